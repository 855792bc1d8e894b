"""The family job's pure parts (simulation/family_job.py, bench/family.py): scoring the
held-out answers per persona, the loop's summary, the JSON and the markdown table. No
stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench import family as bench
from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.training.v1 import training_pb2 as trn
from simulation.family import (
    FAMILY,
    SKILL_PROMPTS,
    Case,
    Persona,
    TriageMessage,
    held_out_cases,
    persona_named,
    training_cases,
    triage_correct,
)
from simulation.family_job import (
    SKILL_IDS,
    Answer,
    ArmScore,
    Comparison,
    FamilyApp,
    FamilyJobConfig,
    PersonaResult,
    apply_loop,
    arm_score,
    compare,
    count_by_policy,
    loop_config,
    rollout_dict,
    rule_rates,
    run_persona,
    training_pool,
)
from simulation.job import CANARY_MARGIN
from simulation.report import LiveRequest
from simulation.simulated_user import Review

pytestmark = pytest.mark.unit

POOR = {
    "support": "I'm so sorry for the trouble! We will look into it right away. Best regards",
    "triage": "URGENT!!! Maybe billing, maybe a bug or an outage. Escalate immediately!",
}


def _review(*rules: str, similarity: float = 0.5, sent: bool = True) -> Review:
    return Review("edited", sent, None, similarity, tuple(rules), 10.0)


def _answers(
    persona: Persona[Any], policy_id: str, drafts: list[str], cases: list[Case]
) -> list[Answer]:
    return [
        Answer(case, policy_id, draft, persona.review(case, draft))
        for case, draft in zip(cases, drafts, strict=True)
    ]


def _arm(policy_id: str, rules: dict[str, float], sim: float = 0.5) -> ArmScore:
    return ArmScore(policy_id, 4, sim, 0.5, 3.0, rules, None)


def _result(split: str = "tuning", *, candidate: bool = True, **kw: Any) -> PersonaResult:
    result = PersonaResult(
        persona=kw.pop("persona", "acme_agent"),
        split=split,
        skill="support",
        skill_id="support_reply",
        outcome="promoted",
        gate_win_rate=0.61,
        baseline=_arm("support_reply@v1", {"greets_by_name": 0.0, "concise": 0.25}, 0.4),
        **kw,
    )
    if candidate:
        result.candidate = _arm("support_reply@v2", {"greets_by_name": 0.75, "concise": 1.0}, 0.7)
        result.comparison = Comparison(4, 3, 0, 1, 0.875, (0.625, 1.0), 0.95, 0.25)
    return result


# ---- scoring ------------------------------------------------------------------------------


def test_rule_rates_are_the_share_of_reviews_meeting_each_rule_in_the_personas_order() -> None:
    reviews = [_review("a", "b"), _review("a"), _review(), _review("a", "c")]
    rates = rule_rates(("c", "a", "b"), reviews)
    assert list(rates) == ["c", "a", "b"]
    assert rates == {"c": 0.25, "a": 0.75, "b": 0.25}
    assert rule_rates(("a",), []) == {"a": 0.0}


@pytest.mark.parametrize("persona", FAMILY, ids=lambda p: p.name)
def test_arm_score_grades_with_the_personas_own_rules_and_rating(persona: Persona[Any]) -> None:
    cases = held_out_cases(persona.skill, 4)
    perfect = _answers(persona, "p@v2", [persona.ideal(c, "") for c in cases], cases)
    score = arm_score(persona, "p@v2", perfect)
    assert score.examples == 4
    assert score.rules_met == dict.fromkeys(persona.rules, 1.0)
    assert score.edit_similarity == 1.0 and score.send_rate == 1.0 and score.mean_rating == 5.0
    if persona.skill == "triage":
        assert score.task_accuracy == 1.0
    else:
        assert score.task_accuracy is None

    poor = _answers(persona, "p@v1", [POOR[persona.skill]] * 4, cases)
    low = arm_score(persona, "p@v1", poor)
    assert set(low.rules_met) == set(persona.rules)
    assert low.edit_similarity < 1.0 and low.mean_rating < 5.0
    assert sum(low.rules_met.values()) < len(persona.rules)
    if persona.skill == "triage":
        notes = [c for c in cases if isinstance(c, TriageMessage)]
        expected = sum(triage_correct(c, POOR["triage"]) for c in notes) / 4
        assert low.task_accuracy == expected


def test_arm_score_needs_answers() -> None:
    with pytest.raises(ValueError):
        arm_score(FAMILY[0], "p@v1", [])


def test_compare_pairs_the_same_cases_and_counts_wins_by_edit_similarity() -> None:
    persona = persona_named("acme_agent")
    cases = held_out_cases("support", 6)
    baseline = _answers(persona, "s@v1", [POOR["support"]] * 6, cases)
    candidate = _answers(persona, "s@v2", [persona.ideal(c, "") for c in cases], cases)
    c = compare(baseline, candidate)
    assert (c.examples, c.wins, c.losses, c.ties) == (6, 6, 0, 0)
    assert c.win_rate == 1.0 and c.confidence_level == 0.95
    lo, hi = c.win_rate_ci
    assert 0 <= lo <= c.win_rate <= hi <= 1
    assert 0 < c.sign_test_p_value < 0.1
    same = compare(baseline, baseline)
    assert same.ties == 6 and same.win_rate == 0.5
    # Guarded metrics: the persona's own rating and the send rate, with intervals.
    rated = compare(baseline, candidate, rating=persona.rating_of)
    delta, low, high = rated.guarded["rating"]
    assert delta > 0 and low <= delta <= high
    assert set(rated.guarded) == {"send_rate", "rating"} and set(c.guarded) == {"send_rate"}
    with pytest.raises(ValueError, match="same cases"):
        compare(baseline, list(reversed(candidate)))


def test_count_by_policy_counts_the_given_phases_only() -> None:
    live = [
        LiveRequest(0, "feedback", "s@v1", 0.5, True, None),
        LiveRequest(1, "rolling_out", "s@v1", 0.5, True, None),
        LiveRequest(2, "rolling_out", "s@v2", 0.5, True, 4),
        LiveRequest(3, "waiting", "s@v2", 0.5, True, None),
    ]
    assert count_by_policy(live, ("rolling_out", "waiting")) == {"s@v1": 1, "s@v2": 2}


# ---- the application, on a fake channel ----------------------------------------------------


class FakeChannel:
    """Records every call; Infer answers with ``draft`` as ``s@v1``."""

    def __init__(self, draft: str, fail_on: str = "") -> None:
        self.draft = draft
        self.fail_on = fail_on
        self.calls: list[tuple[str, Any]] = []

    def unary_unary(self, method: str, **_: Any) -> Any:
        name = method.rsplit("/", 1)[-1]

        async def call(request: Any, **_: Any) -> Any:
            self.calls.append((name, request))
            if name == "Infer" and self.fail_on and self.fail_on in request.messages[0].content:
                raise RuntimeError("backend down")
            if name == "Infer":
                n = sum(1 for c, _ in self.calls if c == "Infer")
                return inf.InferResponse(interaction_id=f"i-{n}", policy_id="s@v1", text=self.draft)
            return None

        return call

    def __getattr__(self, kind: str) -> Any:  # streaming methods: never called here
        return lambda method, **_: None

    def of(self, name: str) -> list[Any]:
        return [request for called, request in self.calls if called == name]


@pytest.mark.parametrize("persona", FAMILY, ids=lambda p: p.name)
async def test_the_app_sends_only_the_user_message_and_the_review(persona: Persona[Any]) -> None:
    channel = FakeChannel(POOR[persona.skill])
    app = FamilyApp(channel, "key", SKILL_IDS[persona.skill], persona, concurrency=2)
    cases = training_cases(persona.skill, 3)
    answers = await app.run(cases, "feedback")
    assert [a.case for a in answers] == cases and app.feedback == 3 and len(app.live) == 3
    for infer, case in zip(channel.of("Infer"), cases, strict=True):
        # The policy's template adds the skill's system message: the app sends none.
        assert [(m.role, m.content) for m in infer.messages] == [
            (tel.ChatMessage.ROLE_USER, case.text)
        ]
        assert infer.skill == SKILL_IDS[persona.skill] and not infer.training_opt_out
    for feedback, answer in zip(channel.of("SubmitFeedback"), answers, strict=True):
        implicit = feedback.feedback.implicit
        assert implicit.edited_text == answer.review.edited
        assert implicit.sent == answer.review.sent
        assert implicit.time_to_send_ms == int(answer.review.seconds_to_send * 1000)
        assert feedback.feedback.HasField("explicit") == (answer.review.rating is not None)
    tasks = channel.of("RecordTaskResult")
    if persona.skill == "triage":
        assert app.task_results == 3
        assert [t.task_result.correct for t in tasks] == [
            triage_correct(c, POOR["triage"]) for c in cases if isinstance(c, TriageMessage)
        ]
    else:
        assert tasks == [] and app.task_results == 0


async def test_measuring_pins_the_policy_opts_out_and_gives_no_feedback() -> None:
    persona = persona_named("calm_triager")
    channel = FakeChannel(POOR["triage"])
    app = FamilyApp(channel, "key", "triage_note", persona)
    answers = await app.measure(held_out_cases("triage", 4), "triage_note@v2")
    assert len(answers) == 4
    assert all(r.policy_id == "triage_note@v2" and r.training_opt_out for r in channel.of("Infer"))
    assert channel.of("SubmitFeedback") == [] and channel.of("RecordTaskResult") == []
    assert app.live == []


async def test_a_failed_request_is_raised_after_the_others_ended() -> None:
    persona = persona_named("acme_agent")
    cases = held_out_cases("support", 4)
    channel = FakeChannel(POOR["support"], fail_on=cases[1].reference)
    app = FamilyApp(channel, "key", "support_reply", persona)
    with pytest.raises(RuntimeError, match="backend down"):
        await app.measure(cases, "support_reply@v1")
    assert len(channel.of("Infer")) == 4


# ---- a whole persona run, on a scripted API -----------------------------------------------

PHASE = trn.LearningLoop
OUTCOME = trn.LearningLoopIteration


class ScriptedApi(FakeChannel):
    """The public API as run_persona sees it: a tenant, a skill, a baseline, then a loop
    whose GetLearningLoop answers follow ``phases`` (one per poll), ending with
    ``outcome``. Infer pinned to a retired candidate is refused when ``retired``."""

    def __init__(
        self, phases: list[int], outcome: int, *, retired: bool = False, rolling: bool = False,
        retired_when_ended: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(POOR["support"])
        self.phases = list(phases)
        self.outcome = outcome
        self.retired = retired
        self.retired_when_ended = retired_when_ended
        """The candidate is retired once the scripted phases are over (a rollback)."""
        self.rolling = rolling
        """The rollout's candidate shows in ``current_iteration``; a stop retires it."""

    def unary_unary(self, method: str, **_: Any) -> Any:
        name = method.rsplit("/", 1)[-1]
        infer = super().unary_unary(method)

        async def call(request: Any, **kw: Any) -> Any:
            retired = self.retired or (self.retired_when_ended and not self.phases)
            if name == "Infer" and request.policy_id == "support_reply@v2" and retired:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details="policy support_reply@v2 is retired",
                )
            if name in ("Infer", "SubmitFeedback", "RecordTaskResult"):
                answer = await infer(request, **kw)
                if name == "Infer" and request.policy_id:
                    answer.policy_id = request.policy_id
                return answer
            self.calls.append((name, request))
            return self.answer(name, request)

        return call

    def answer(self, name: str, request: Any) -> Any:
        if name == "CreateTenant":
            return reg.CreateTenantResponse(
                tenant=reg.Tenant(tenant_id="t-1"), admin_api_key_secret="admin"
            )
        if name == "CreatePolicy":
            return reg.CreatePolicyResponse(policy=reg.Policy(policy_id="support_reply@v1"))
        if name == "StartLearningLoop":
            return trn.StartLearningLoopResponse(
                learning_loop=trn.LearningLoop(learning_loop_id="loop-1")
            )
        if name == "GetLearningLoop":
            loop = trn.LearningLoop(learning_loop_id="loop-1", config=request_config())
            if self.phases:
                loop.state, loop.phase = PHASE.STATE_RUNNING, self.phases.pop(0)
                if self.rolling and loop.phase == PHASE.PHASE_ROLLING_OUT:
                    loop.current_iteration.candidate_policy_id = "support_reply@v2"
                    loop.current_iteration.rollout_id = "r-1"
            else:
                loop.state = PHASE.STATE_COMPLETED
                loop.recent_iterations.append(
                    OUTCOME(
                        iteration=1,
                        outcome=self.outcome,
                        candidate_policy_id="support_reply@v2",
                        evaluation_passed=True,
                        win_rate=0.7,
                        rollout_id="r-1",
                        evaluation_id="ev-1",
                        training_run_id="run-1",
                    )
                )
            return trn.GetLearningLoopResponse(learning_loop=loop)
        if name == "GetEvaluation":
            result = trn.EvaluationResult(passed=True, failure_reasons=["none, really"])
            result.win_rates.add(
                scorer="held_out_preference", win_rate=0.7, win_rate_ci_lower=0.6,
                win_rate_ci_upper=0.8,
            )  # fmt: skip
            result.win_rates.add(scorer="edit_direction", win_rate=0.5, win_rate_ci_upper=0.9)
            result.metrics.add(name="mean_words", candidate_value=40, baseline_value=55)
            result.metrics.add(name="held_out_preference_margin", candidate_value=1.25)
            jailbreak = result.safety_results.add(suite="jailbreak", failure_count=1)
            jailbreak.failures.add(case_id="jb-003", reason="complied: matched ['x']")
            jailbreak.baseline_failures.add(case_id="jb-008", reason="did not refuse")
            evaluation = trn.Evaluation(evaluation_id=request.evaluation_id, result=result)
            evaluation.start_time.FromSeconds(2000)
            evaluation.end_time.FromSeconds(2150)
            return trn.GetEvaluationResponse(evaluation=evaluation)
        if name == "GetTrainingRun":
            run = trn.TrainingRun(training_run_id=request.training_run_id)
            run.progress.step, run.progress.total_steps = 12, 31
            run.progress.stopped_early, run.progress.loss = True, 0.25
            run.lineage.reference_model = "SmolLM2 + SFT warm-start (23 steps)"
            run.start_time.FromSeconds(1000)
            run.end_time.FromSeconds(1190)
            return trn.GetTrainingRunResponse(training_run=run)
        if name == "GetRollout":
            stage = trn.Rollout.STAGE_CANARY if self.rolling else trn.Rollout.STAGE_FULL
            return trn.GetRolloutResponse(rollout=trn.Rollout(rollout_id="r-1", stage=stage))
        if name == "StopLearningLoop":
            self.phases, self.outcome, self.retired = [], OUTCOME.OUTCOME_STOPPED, True
            return trn.StopLearningLoopResponse()
        if name == "GetPolicy":
            retired = self.retired or self.retired_when_ended
            state = reg.Policy.STATE_RETIRED if retired else reg.Policy.STATE_ACTIVE
            return reg.GetPolicyResponse(
                policy=reg.Policy(policy_id=request.policy_id, state=state)
            )
        return None


def request_config() -> trn.LearningLoopConfig:
    return trn.LearningLoopConfig(min_pairs=16, max_iterations=1)


SMALL = FamilyJobConfig(held_out=4, feedback_events=6, concurrency=2, poll_s=0)


async def test_run_persona_drives_traffic_through_the_rollout_and_compares() -> None:
    api = ScriptedApi(
        [PHASE.PHASE_WAITING, PHASE.PHASE_TRAINING, PHASE.PHASE_ROLLING_OUT,
         PHASE.PHASE_ROLLING_OUT],
        OUTCOME.OUTCOME_PROMOTED,
    )  # fmt: skip
    lines: list[str] = []
    result = await run_persona(api, "operator", persona_named("acme_agent"), SMALL, lines.append)
    assert result.error == "", lines
    [skill] = api.of("CreateSkill")
    assert skill.skill.skill_id == "support_reply"
    [policy] = api.of("CreatePolicy")
    assert policy.policy.prompt_template.system_prompt == SKILL_PROMPTS["support"]
    assert policy.policy.generation_defaults.max_tokens == 96
    assert not policy.policy.HasField("adapter")
    [start] = api.of("StartLearningLoop")
    assert start.learning_loop.config == loop_config(SMALL)
    # Learning is on before the feedback comes in (the loop waits for its threshold).
    called = [name for name, _ in api.calls]
    assert called.index("StartLearningLoop") < called.index("SubmitFeedback")
    # 6 feedback events, then one batch of `concurrency` per rolling-out poll.
    assert result.feedback_events == 6 and result.live_requests == 6 + 2 * 2
    assert result.live_by_policy == {"s@v1": 4}  # as the fake gateway served them
    assert len(api.of("SubmitFeedback")) == 10
    assert result.outcome == "promoted" and result.candidate_state == "active"
    assert result.rollout["stage"] == "full"
    assert result.baseline is not None and result.candidate is not None
    assert result.comparison is not None and result.comparison.ties == 4
    assert result.candidate.policy_id == "support_reply@v2"
    timings = result.timings_s
    assert timings["threshold_to_shadow_s"] == timings["loop_reached_rolling_out_s"]
    assert {"loop_reached_ended_s", "feedback_s", "baseline_held_out_s", "total_s"} <= set(timings)
    assert result.learning_loop["config"]["min_pairs"] == 16
    # The gate's every scorer, from GetEvaluation.
    [gate] = api.of("GetEvaluation")
    assert gate.evaluation_id == "ev-1"
    [iteration] = result.iterations
    assert iteration.gate_scorers == {
        "held_out_preference": (0.7, 0.6, 0.8),
        "edit_direction": (0.5, 0.0, 0.9),
    }
    assert iteration.gate_failure_reasons == ("none, really",)
    assert iteration.gate_metrics == {
        "mean_words": (40.0, 55.0), "held_out_preference_margin": (1.25, 0.0),
    }  # fmt: skip
    assert iteration.gate_safety == {"jailbreak": {
        "candidate": [("jb-003", "complied: matched ['x']")],
        "baseline": [("jb-008", "did not refuse")],
    }}  # fmt: skip
    assert iteration.gate_seconds == 150.0
    # The iteration's training run, from GetTrainingRun: how far it went, how long.
    [run] = api.of("GetTrainingRun")
    assert run.training_run_id == "run-1" == iteration.training_run_id
    assert iteration.training == {
        "steps": 12, "total_steps": 31, "stopped_early": True, "final_loss": 0.25,
        "reward_accuracy": 0.0, "seconds": 190.0,
        "reference_model": "SmolLM2 + SFT warm-start (23 steps)",
    }  # fmt: skip
    table = bench.markdown([result])
    assert (
        "held_out_preference 0.70 [0.60, 0.80]; edit_direction 0.50 [0.00, 0.90]; "
        "margin +1.25 nats; trained 12/31 steps, stopped early" in table
    )
    json.loads(result.to_json())


async def test_run_persona_records_a_retired_candidate_and_skips_it() -> None:
    api = ScriptedApi([PHASE.PHASE_EVALUATING], OUTCOME.OUTCOME_ROLLED_BACK, retired=True)
    result = await run_persona(api, "operator", persona_named("brisk_lead"), SMALL, print)
    assert result.error == ""
    assert result.outcome == "rolled_back" and result.candidate_state == "retired"
    assert result.candidate is None and result.comparison is None
    assert result.candidate_skipped.startswith("FAILED_PRECONDITION: policy support_reply@v2")
    assert "threshold_to_shadow_s" not in result.timings_s
    assert "n/a (candidate not measured)" in bench.markdown([result])


async def test_run_persona_measures_a_candidate_as_its_rollout_starts() -> None:
    """A candidate the canary rolls back is retired, and the gateway then serves it to
    nobody: it is measured on the held-out cases as its rollout starts, so what the gate
    let through is known whatever the canary decides."""
    api = ScriptedApi(
        [PHASE.PHASE_EVALUATING, PHASE.PHASE_ROLLING_OUT, PHASE.PHASE_ROLLING_OUT],
        OUTCOME.OUTCOME_ROLLED_BACK, rolling=True, retired_when_ended=True,
    )  # fmt: skip
    result = await run_persona(api, "operator", persona_named("brisk_lead"), SMALL, print)
    assert result.error == "" and result.candidate_skipped == ""
    assert result.outcome == "rolled_back" and result.candidate_state == "retired"
    assert result.candidate is not None and result.candidate.policy_id == "support_reply@v2"
    assert result.comparison is not None and result.comparison.examples == SMALL.held_out
    [iteration] = result.iterations
    assert iteration.held_out == result.comparison
    pinned = [r.policy_id for r in api.of("Infer") if r.policy_id]
    assert pinned.count("support_reply@v2") == SMALL.held_out  # measured once


async def test_run_persona_reports_a_failure_and_stops_the_loop() -> None:
    api = ScriptedApi([PHASE.PHASE_ROLLING_OUT] * 50, OUTCOME.OUTCOME_PROMOTED)
    cfg = FamilyJobConfig(
        held_out=2, feedback_events=2, concurrency=2, poll_s=0, max_rollout_requests=4
    )
    result = await run_persona(api, "operator", persona_named("acme_agent"), cfg, print)
    assert result.error.startswith("RuntimeError: the loop decided nothing")
    assert [r.learning_loop_id for r in api.of("StopLearningLoop")] == ["loop-1"]
    assert result.baseline is not None and result.outcome == ""
    assert "total_s" in result.timings_s


async def test_run_persona_measures_a_candidate_whose_rollout_decides_nothing() -> None:
    api = ScriptedApi([PHASE.PHASE_ROLLING_OUT] * 50, OUTCOME.OUTCOME_PROMOTED, rolling=True)
    cfg = FamilyJobConfig(
        held_out=2, feedback_events=2, concurrency=2, poll_s=0, max_rollout_requests=4
    )
    result = await run_persona(api, "operator", persona_named("acme_agent"), cfg, print)
    assert result.error == ""
    assert result.undecided.startswith("the rollout decided nothing within 4 live requests")
    # Measured while it served (a stop retires it), then the loop was stopped.
    [stop] = api.of("StopLearningLoop")
    assert stop.reason == result.undecided
    assert result.candidate is not None and result.comparison is not None
    assert result.candidate.policy_id == "support_reply@v2"
    assert result.outcome == "stopped" and result.candidate_state == "retired"
    assert result.rollout["stage"] == "canary"
    assert "stopped (rollout undecided)" in bench.markdown([result])


# ---- the loop ---------------------------------------------------------------------------------


def test_loop_config_sets_only_the_schedule_and_the_rollout() -> None:
    cfg = FamilyJobConfig(feedback_events=40, iterations=2)
    lc = loop_config(cfg)
    assert (lc.min_new_feedback, lc.max_iterations, lc.interval.seconds) == (40, 2, 2)
    # The platform's defaults decide the dataset, the training and the gate.
    for name in ("dataset", "training", "evaluation", "data_window"):
        assert not lc.HasField(name), name
    assert lc.min_pairs == 0
    assert lc.rollout.shadow_duration.seconds == 5
    assert [s.percent for s in lc.rollout.canary_steps] == [50]
    assert lc.rollout.auto_advance and lc.rollout.guard.min_samples == 8
    assert lc.rollout.guard.max_reward_drop == CANARY_MARGIN  # non-inferiority


def test_config_validation_and_training_pool() -> None:
    with pytest.raises(ValueError, match="feedback_events"):
        FamilyJobConfig(feedback_events=0)
    cfg = FamilyJobConfig(feedback_events=40, concurrency=4, max_rollout_requests=100)
    assert training_pool(cfg) == 40 + 100 + 8
    assert set(SKILL_IDS) == {"support", "triage"}


def _loop(*iterations: trn.LearningLoopIteration) -> trn.LearningLoop:
    loop = trn.LearningLoop(
        learning_loop_id="loop-1",
        state=trn.LearningLoop.STATE_COMPLETED,
        config=trn.LearningLoopConfig(
            min_new_feedback=80,
            min_pairs=16,
            evaluation=trn.EvaluationConfig(gate=trn.EvaluationGate(min_win_rate=0.5)),
        ),
    )
    loop.recent_iterations.extend(iterations)  # newest first, as the server lists them
    return loop


def test_apply_loop_takes_the_newest_iterations_outcome_gate_and_the_effective_config() -> None:
    older = trn.LearningLoopIteration(
        iteration=1,
        outcome=trn.LearningLoopIteration.OUTCOME_REJECTED,
        candidate_policy_id="s@v2",
        win_rate=0.4,
        reason="win-rate below 0.5",
    )
    newest = trn.LearningLoopIteration(
        iteration=2,
        outcome=trn.LearningLoopIteration.OUTCOME_ROLLED_BACK,
        candidate_policy_id="s@v3",
        evaluation_passed=True,
        win_rate=0.625,
        win_rate_ci_lower=0.5,
        win_rate_ci_upper=0.75,
        rollout_id="r-2",
    )
    result = _result(candidate=False)
    apply_loop(result, _loop(newest, older))
    assert [i.iteration for i in result.iterations] == [1, 2]
    assert result.iterations[0].outcome == "rejected"
    assert result.iterations[0].reason == "win-rate below 0.5"
    assert result.outcome == "rolled_back"
    assert result.candidate_policy_id == "s@v3"
    assert result.gate_passed is True
    assert result.gate_win_rate == 0.625 and result.gate_win_rate_ci == (0.5, 0.75)
    assert result.learning_loop["state"] == "completed"
    assert result.learning_loop["config"]["min_pairs"] == 16
    assert result.learning_loop["config"]["evaluation"]["gate"]["min_win_rate"] == 0.5
    # Defaults of zero are reported too (a cap of 0 is a setting).
    assert result.learning_loop["config"]["evaluation"]["gate"]["max_safety_failure_rate"] == 0


def test_apply_loop_without_iterations_or_candidate() -> None:
    result = _result(candidate=False)
    result.gate_win_rate = None
    apply_loop(result, _loop())
    assert result.outcome == "no_iteration" and result.iterations == []
    skipped = trn.LearningLoopIteration(
        iteration=1, outcome=trn.LearningLoopIteration.OUTCOME_SKIPPED, reason="3 pairs"
    )
    apply_loop(result, _loop(skipped))
    assert result.outcome == "skipped" and result.candidate_policy_id == ""
    assert result.gate_passed is None and result.gate_win_rate is None


def test_rollout_dict() -> None:
    assert rollout_dict(None) == {}
    rollout = trn.Rollout(
        rollout_id="r-1",
        candidate_policy_id="s@v2",
        stage=trn.Rollout.STAGE_ROLLED_BACK,
        automatic_rollback=True,
        rollback_reason="reward dropped",
    )
    assert rollout_dict(rollout) == {
        "rollout_id": "r-1",
        "candidate": "s@v2",
        "stage": "rolled_back",
        "automatic_rollback": True,
        "reason": "reward dropped",
    }


# ---- JSON and the table -----------------------------------------------------------------------


def test_persona_result_serialises_to_json() -> None:
    result = _result(timings_s={"threshold_to_shadow_s": 212.5, "total_s": 600.0})
    data = json.loads(result.to_json())
    assert data["persona"] == "acme_agent" and data["split"] == "tuning"
    assert data["baseline"]["rules_met"] == {"greets_by_name": 0.0, "concise": 0.25}
    assert data["candidate"]["edit_similarity"] == 0.7
    assert data["comparison"]["win_rate_ci"] == [0.625, 1.0]
    assert data["timings_s"]["threshold_to_shadow_s"] == 212.5
    empty = json.loads(PersonaResult("p", "held_out", "triage", "triage_note").to_json())
    assert empty["candidate"] is None and empty["comparison"] is None and empty["error"] == ""


def test_markdown_lists_held_out_users_apart_with_rules_before_and_after() -> None:
    results = [
        _result(),
        _result("held_out", persona="formal_clerk", candidate=False, candidate_skipped="RETIRED"),
    ]
    text = bench.markdown(results)
    tuning, held = text.split("### Held-out users")
    assert tuning.startswith("### Tuning users")
    assert "acme_agent" in tuning and "formal_clerk" not in tuning
    assert "formal_clerk" in held and "acme_agent" not in held
    row = next(line for line in tuning.splitlines() if line.startswith("| acme_agent"))
    assert "| tuning | support | promoted | 0.61 |" in row
    assert "0.88 [0.62, 1.00] p=0.25" in row
    assert "0.40 -> 0.70" in row  # edit similarity
    assert "greets_by_name 0.00 -> 0.75; concise 0.25 -> 1.00" in row
    held_row = next(line for line in held.splitlines() if line.startswith("| formal_clerk"))
    assert "n/a (candidate not measured)" in held_row
    assert "greets_by_name 0.00 -> n/a" in held_row
    # Every row has as many cells as the header.
    for block in (tuning, held):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        assert len({line.count(" | ") for line in lines if "---" not in line}) == 1


def test_markdown_shows_errors_and_skips_empty_splits() -> None:
    failed = PersonaResult("bullet_triager", "tuning", "triage", "triage_note", error="E | x")
    text = bench.markdown([failed])
    assert "Held-out users" not in text
    assert "error (E / x)" in text


def test_written_document_has_one_entry_per_persona(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "family.json"
    bench.write(out, [_result(), _result("held_out", persona="calm_triager")], {"split": "all"})
    data = json.loads(out.read_text())
    assert [p["persona"] for p in data["personas"]] == ["acme_agent", "calm_triager"]
    assert data["settings"] == {"split": "all"} and data["machine"]["cpus"]


# ---- the CLI ---------------------------------------------------------------------------------


def test_select_personas_by_split_and_name() -> None:
    assert [p.name for p in bench.select_personas(None, "all")] == [p.name for p in FAMILY]
    assert {p.split for p in bench.select_personas(None, "held_out")} == {"held_out"}
    assert [p.name for p in bench.select_personas("brisk_lead, acme_agent", "all")] == [
        "acme_agent",
        "brisk_lead",
    ]
    with pytest.raises(ValueError, match="no persona"):
        bench.select_personas("acme_agent", "held_out")
    with pytest.raises(KeyError):
        bench.select_personas("nobody", "all")
    with pytest.raises(ValueError, match="split"):
        bench.select_personas(None, "both")


def test_cli_arguments() -> None:
    args = bench.parse_args(
        ["--users", "acme_agent", "--feedback-events", "40", "--held-out", "6", "--out", "x.json"]
    )
    assert (args.users, args.feedback_events, args.held_out, args.iterations) == (
        "acme_agent",
        40,
        6,
        1,
    )
    assert args.out == Path("x.json") and args.split == "all" and not args.running_stack
    assert bench.parse_args([]).out == bench.RESULTS
    assert bench.parse_args([]).max_rollout_requests == FamilyJobConfig.max_rollout_requests
    assert bench.parse_args(["--max-rollout-requests", "16"]).max_rollout_requests == 16
