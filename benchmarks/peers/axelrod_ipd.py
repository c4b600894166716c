"""The Axelrod library's side of the IPD benchmark (runs in the peer environment, never socsim's).

Plays the round robin socsim plays: the same players (socsim's strategy of agent i is player i), one
match of `--turns` turns on every pair i < j, payoffs R=8, S=0, T=10, P=5, moves written to CSV as
Axelrod's Tournament does. Prints one JSON line: import, set-up and play times, and (with `--scores`)
every player's total over the matches in which both players are deterministic, for comparing with
socsim's Parquet. Scoring happens after the timed part.

    python axelrod_ipd.py --strategies agents.json --turns 10 [--scores]
"""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

# socsim strategy name -> Axelrod class name. Only strategies with an exact counterpart: socsim's
# defect_once has none (Axelrod's closest players defect more than once), so the benchmark leaves it out.
AXELROD_NAMES = {
    "always_cooperate": "Cooperator",
    "always_defect": "Defector",
    "tit_for_tat": "TitForTat",
    "suspicious_tit_for_tat": "SuspiciousTitForTat",
    "tit_for_two_tats": "TitFor2Tats",
    "grim_trigger": "Grudger",
    "win_stay_lose_shift": "WinStayLoseShift",
    "alternate": "Alternator",
    "random": "Random",  # p = 0.5, as socsim's
}
STOCHASTIC = {"random"}
PAYOFFS = {"r": 8, "s": 0, "t": 10, "p": 5}  # socsim's scenario.pd defaults


def players_for(strategies: list[str]) -> list:
    import axelrod as axl

    return [getattr(axl, AXELROD_NAMES[name])() for name in strategies]


def scores_from_csv(path: str, strategies: list[str], game: object) -> list[float]:
    """Each player's total over deterministic-vs-deterministic matches, scored with Axelrod's Game."""
    deterministic = [name not in STOCHASTIC for name in strategies]
    totals = [0.0] * len(strategies)
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for (_, i, j, _, _, _, mine), (_, _, _, _, _, _, theirs) in zip(reader, reader, strict=False):
            a, b = int(i), int(j)
            if deterministic[a] and deterministic[b]:
                for x, y in zip(mine, theirs, strict=True):
                    pa, pb = game.score((_action(x), _action(y)))  # type: ignore[attr-defined]
                    totals[a] += pa
                    totals[b] += pb
    return totals


def _action(char: str) -> object:
    from axelrod.action import Action

    return Action.from_char(char)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", required=True, help="JSON list: socsim strategy of each agent, by id")
    parser.add_argument("--turns", type=int, required=True)
    parser.add_argument("--scores", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import axelrod as axl

    import_s = time.perf_counter() - _IMPORT_START
    with open(args.strategies) as handle:
        strategies = json.load(handle)
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="axelrod-")
    os.close(fd)
    try:
        started = time.perf_counter()
        players = players_for(strategies)
        edges = list(itertools.combinations(range(len(players)), 2))
        game = axl.Game(**PAYOFFS)
        tournament = axl.Tournament(
            players, turns=args.turns, repetitions=1, edges=edges, game=game, seed=args.seed
        )  # fmt: skip
        built = time.perf_counter()
        tournament.play(build_results=False, filename=path, progress_bar=False)
        played = time.perf_counter()
        scores = scores_from_csv(path, strategies, game) if args.scores else None
    finally:
        os.remove(path)
    answer = {
        "import_s": import_s,
        "setup_s": built - started,
        "play_s": played - built,
        "total_s": played - started,
        "matches": len(edges),
        "moves": 2 * len(edges) * args.turns,
        "scores": scores,
        "version": axl.__version__,
    }
    print(json.dumps(answer), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
