"""Opinion dynamics measures (deffuant, hegselmann_krause, value_debate): clusters, polarization and
time to consensus. They are declared with those scenarios; here for notebooks and the report."""

from scenarios.opinion_dynamics import GAP, MIN_SHARE, cluster_counts, polarization, time_to_consensus

__all__ = ["GAP", "MIN_SHARE", "cluster_counts", "polarization", "time_to_consensus"]
