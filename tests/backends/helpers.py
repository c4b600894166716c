"""Small builders shared by the backend tests: a population and IPD-like decision batches."""

from __future__ import annotations

import numpy as np

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions, NumberField, TextField
from agents.population import Population, SamplerConfig, sample_personas
from agents.prompts import Prompt, Prompter, PromptTemplate
from scenarios.ipd import IPDConfig, IteratedGame
from sim.backends.config import BackendConfig
from sim.backends.policy import LLMPolicy

MOVE_SPEC = ActionSpec(
    name="ipd_move",
    fields=(ChoiceField(name="move", options=("J", "F")),),
    max_tokens=2,
    temperature=0.0,
)
GIVE_SPEC = ActionSpec(
    name="test_give",
    fields=(
        NumberField(name="give", minimum=0, maximum=10, integer=True),
        TextField(name="why", max_chars=40),
    ),
    max_tokens=128,
)


class PromptsForTests:
    """The prompts these tests ask: the IPD move (the ipd scenario's own), and a number with a reason."""

    ipd = IteratedGame(IPDConfig())
    prompts = {
        "ipd_move": ipd.prompts["ipd_move"],
        "test_give": Prompt(PromptTemplate(user="{persona.name} has {units} units. How many to give?"), ("units",)),
    }

    def prompt_variables(self, spec, obs, context, seed):
        if spec == "ipd_move":
            return self.ipd.prompt_variables(spec, obs, context, seed)
        return {"units": obs["units"]}


def prompter(n: int) -> Prompter:
    game = PromptsForTests()
    return Prompter(game, {name: p.template for name, p in game.prompts.items()}, population(n).personas)


def decide(config: BackendConfig, batch: DecisionBatch, n_agents: int = 8) -> tuple[Decisions, dict[str, int]]:
    """One LLMPolicy, one batch, closed afterwards: the answers and the policy's totals."""
    policy = LLMPolicy(config, prompter(n_agents))
    try:
        return policy.decide(batch), policy.totals()
    finally:
        policy.close()


def population(n: int) -> Population:
    personas = sample_personas(SamplerConfig(), n, np.random.default_rng(0))
    return Population(personas, ("llm",), np.zeros(n, np.int16))


def move_batch(n: int, t: int = 2, seed0: int = 1000) -> DecisionBatch:
    """n IPD decisions at round t (histories alternate J/F), seeds seed0 .. seed0 + n - 1 (+2**40)."""
    own = np.tile(np.arange(t, dtype=np.int8) % 2, (n, 1))
    return DecisionBatch(
        spec=MOVE_SPEC,
        agent_ids=np.arange(n),
        obs={"own": own, "opp": 1 - own, "side": np.zeros(n, np.int8)},
        context={
            "round": t,
            "rounds": 10,
            "game": "pd",
            "payoffs": [[[[8, 8], [0, 10]], [[10, 0], [5, 5]]]] * 2,
        },
        seeds=np.arange(seed0, seed0 + n, dtype=np.uint64) + np.uint64(2**40),
    )


def give_batch(n: int, upper: np.ndarray) -> DecisionBatch:
    return DecisionBatch(
        spec=GIVE_SPEC,
        agent_ids=np.arange(n),
        obs={"units": np.asarray(upper, dtype=np.float64)},
        bounds={"give": np.asarray(upper, dtype=np.float64)},
        seeds=np.arange(7, 7 + n, dtype=np.uint64) * np.uint64(7919),
    )
