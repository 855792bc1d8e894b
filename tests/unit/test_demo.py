"""The main job's parts that need no stack: the workload, the simulated user and the
report. (The job itself runs against the real stack in tests/integration.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from simulation import report as rep
from simulation.simulated_user import HiddenPreference, SimulatedUser, rules_met
from simulation.workload import held_out, training_stream

ALL_RULES = ("greets_by_name", "quotes_order_number", "concise", "sign_off")


def test_workload_is_deterministic_and_held_out_never_overlaps_training() -> None:
    assert training_stream(50) == training_stream(50)
    train = {e.order_number for e in training_stream(2000)}
    test = {e.order_number for e in held_out(200)}
    assert not train & test
    email = held_out(1)[0]
    assert email.order_number in email.text and email.full_name in email.text


def test_the_users_own_edit_meets_every_hidden_rule() -> None:
    user = SimulatedUser()
    drafts = [
        "Dear customer,\n\nWe are sorry. Your package is on its way and should arrive soon.\n\n"
        "Sincerely,\n[Your Name]",
        "",
        "word " * 200,
        "Thank you for your email. " * 30,
    ]
    for email in held_out(5):
        for draft in drafts:
            edited = user.ideal_edit(email, draft)
            assert rules_met(email, edited, user.preference) == ALL_RULES, edited
            # Sending exactly what the user wants needs no edit at all.
            assert user.review(email, edited).similarity == 1.0


def test_review_grades_how_much_of_the_draft_survives() -> None:
    user = SimulatedUser(HiddenPreference(rate_fraction=1.0))
    email = held_out(1)[0]
    good = (
        f"Hi {email.first_name},\n\nThanks for writing about order {email.order_number}. "
        f"Your {email.product} ships today.\n\nBest regards,\nNorthwind Support"
    )
    close = good.replace(f"Hi {email.first_name},", "Dear customer,")
    looping = "Northwind Support Agent: " * 40
    r_good, r_close, r_loop = (user.review(email, d) for d in (good, close, looping))
    assert r_good.sent and r_good.rating == 5 and r_good.similarity == 1.0
    assert r_close.sent and r_close.rating == 4 and 0.8 < r_close.similarity < 1.0  # 3 of 4
    # Looping text is thrown away and rewritten: little of it survives.
    assert not r_loop.sent and r_loop.rating == 1 and r_loop.similarity < 0.35
    assert r_good.seconds_to_send < r_close.seconds_to_send < r_loop.seconds_to_send
    # Deterministic: the same draft always gets the same review.
    assert user.review(email, close) == r_close


def test_only_some_reviews_are_rated() -> None:
    user = SimulatedUser(HiddenPreference(rate_fraction=0.5))
    rated = sum(user.review(e, "Hello there.").rating is not None for e in training_stream(400))
    assert 150 < rated < 250


def test_the_simulated_user_shares_no_code_with_the_reward_engines() -> None:
    source = Path(__file__).parents[2] / "simulation" / "simulated_user.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {m for m in imported if m.startswith(("services.", "simulation."))}
    assert ours == {"simulation.workload"}, ours


def _reviews(sims: list[float]) -> list:
    from simulation.simulated_user import Review

    return [Review("x", s >= 0.35, None, s, (), 10.0) for s in sims]


def test_held_out_comparison_counts_wins_and_bounds_the_win_rate() -> None:
    base = _reviews([0.5, 0.6, 0.7, 0.8, 0.5, 0.5])
    cand = _reviews([0.9, 0.9, 0.7, 0.6, 0.8, 0.2])
    h = rep.compare_held_out("s@v1", base, "s@v2", cand)
    assert (h.wins, h.losses, h.ties) == (3, 2, 1)
    assert h.win_rate == pytest.approx(3.5 / 6)
    assert h.win_rate_ci[0] <= h.win_rate <= h.win_rate_ci[1]
    assert h.baseline.send_rate == pytest.approx(1.0) and h.candidate.send_rate == pytest.approx(
        5 / 6
    )
    with pytest.raises(ValueError):
        rep.compare_held_out("s@v1", base, "s@v2", cand[:-1])


def test_guarded_metrics_carry_an_interval_and_a_verdict() -> None:
    # The candidate's answers are all discarded (similarity 0.2): send rate and rating
    # fall on every prompt, beyond noise.
    base, worse = _reviews([0.8] * 10), _reviews([0.2] * 10)
    h = rep.compare_held_out("s@v1", base, "s@v2", worse)
    delta, low, high = h.guarded["send_rate"]
    assert delta == pytest.approx(-1.0) and low <= delta <= high < 0
    assert rep.worse_beyond_noise(h) == ["send_rate", "rating"]
    # One discarded answer in twelve is noise: the interval reaches zero.
    mixed = _reviews([0.8] * 11 + [0.2])
    noisy = rep.compare_held_out("s@v1", _reviews([0.8] * 12), "s@v2", mixed)
    assert noisy.guarded["send_rate"][0] < 0 and rep.worse_beyond_noise(noisy) == []


def test_report_plot_and_summary(tmp_path: Path) -> None:
    base, cand = _reviews([0.5] * 8), _reviews([0.9] * 8)
    report = rep.JobReport("t-1", "support_email")
    report.held_out = rep.compare_held_out("s@v1", base, "s@v2", cand)
    report.live = [
        rep.LiveRequest(i, "baseline", "s@v1" if i < 20 else "s@v2", 0.5 + i / 100, True, None)
        for i in range(40)
    ]
    report.events = [(0, "baseline traffic"), (20, "canary")]
    png = rep.plot(report, tmp_path / "reward.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    text = "\n".join(rep.summary_lines(report))
    assert "win-rate of s@v2 vs s@v1: 1.00" in text
    assert '"win_rate": 1.0' in report.to_json()


def test_the_golden_set_asks_what_the_application_asks() -> None:
    """The packaged support_email golden set is the demo application's: the same system
    message, and never a hint of the user's hidden preference."""
    from services.training.evaluation import load_golden_set
    from simulation.traffic import AGENT_PROMPT

    golden = load_golden_set()
    assert golden and {g.system for g in golden} == {AGENT_PROMPT}
    assert "sign-off" not in AGENT_PROMPT and "greet" not in AGENT_PROMPT


async def test_the_application_retries_unavailable_calls() -> None:
    """A busy CPU backend answers UNAVAILABLE; the app's channel retries (safe: every
    call carries a request_id)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from simulation.job import app_channel

    calls = []

    class Flaky(health_pb2_grpc.HealthServicer):
        async def Check(self, request, context):
            calls.append(1)
            if len(calls) < 3:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "backend busy")
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Flaky(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with app_channel(f"127.0.0.1:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=30
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING and len(calls) == 3
    finally:
        await server.stop(0)
