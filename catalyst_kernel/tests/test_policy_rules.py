"""The built-in rule kinds (SPEC §5.4), table-driven: ``pr-required``, ``soak``,
``change-window`` and ``freeze``. The clock is injected and the read model's history is a fake
timeline, so nothing sleeps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.policy import PolicyRule
from catalyst_kernel.promotion.kinds import ChangeWindow, Freeze, PrRequired, Soak
from catalyst_kernel.promotion.kinds.params import format_duration, parse_duration
from catalyst_kernel.promotion.rules import RuleContext, RuleKind, TimelineEntry
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitRequest,
)
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.testing.suites import RuleKindConformance

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


APPROVED_AT = NOW - hours(1)
GLASS_EXPIRES = NOW + hours(4)


# -------------------------------------------------------------------------------------------------
# Fakes and builders
# -------------------------------------------------------------------------------------------------


class FakeTimeline:
    """The read model's history: entries per (Environment, Application), oldest first."""

    def __init__(self, entries: dict[tuple[str, str], list[TimelineEntry]] | None = None) -> None:
        self.entries = entries or {}
        self.reads: list[tuple[str, str]] = []

    async def application_timeline(
        self, environment: str, application: str
    ) -> Sequence[TimelineEntry]:
        self.reads.append((environment, application))
        return self.entries.get((environment, application), [])


def health(
    at: datetime, status: str | None, version: str = "1.2.0", app: str = "web"
) -> TimelineEntry:
    return TimelineEntry(time=at, kind="health", application=app, version=version, status=status)


def approval(
    approver: str,
    *groups: str,
    revision: int = 1,
    at: datetime = APPROVED_AT,
    reason: str | None = None,
    expires: datetime | None = None,
) -> Approval:
    return Approval(approver, revision, at, frozenset(groups), reason=reason, expires=expires)


def change(
    *approvals: Approval,
    revision: int = 1,
    author: str = "alice",
    applications: Sequence[ApplicationChange] = (
        ApplicationChange("web", ApplicationAction.PROMOTE, "bp-web", "1.2.0"),
    ),
) -> ChangeRequest:
    return ChangeRequest(
        id="7",
        environment="acme-prod",
        title="Promote web",
        author=author,
        status=ChangeStatus.OPEN,
        revision=revision,
        head="h",
        base="b",
        created=NOW - hours(2),
        updated=NOW - hours(1),
        approvals=approvals,
        applications=tuple(applications),
    )


def context(
    the_change: ChangeRequest | None = None,
    *,
    now: datetime = NOW,
    timeline: FakeTimeline | None = None,
    rollback: bool = False,
) -> RuleContext:
    return RuleContext(
        environment="acme-prod",
        change=the_change or change(),
        now=now,
        timeline=timeline or FakeTimeline(),
        rollback=rollback,
    )


def problems(kind: RuleKind, params: dict[str, Any]) -> dict[str, str]:
    """The problems ``kind.validate`` reports for ``params``, by pointer."""
    with pytest.raises(InvalidInput) as caught:
        kind.validate(PolicyRule(kind.kind, params))
    found = {problem.pointer: problem.message for problem in caught.value.problems}
    assert caught.value.field == caught.value.problems[0].pointer
    return found


# -------------------------------------------------------------------------------------------------
# Durations
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("72h", timedelta(hours=72)),
        ("1d", timedelta(days=1)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(days=14)),
        ("90s", timedelta(seconds=90)),
        (" 2h ", timedelta(hours=2)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("72", "is not a duration"),
        ("3 days", "is not a duration"),
        ("h", "is not a duration"),
        ("12h1d", "is not a duration"),
        ("-1h", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("0h", "longer than zero"),
        ("400d", "longer than 366d"),
        ("", "is not a duration"),
    ],
)
def test_bad_durations_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_duration(text)


def test_durations_format_back_to_what_they_parse() -> None:
    for text in ("30m", "3d", "1d12h", "90s", "1h1m1s"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
    assert format_duration(timedelta(hours=72)) == "3d"


# -------------------------------------------------------------------------------------------------
# pr-required
# -------------------------------------------------------------------------------------------------

TEAMS = ["team-platform", "team-security"]


@pytest.mark.parametrize(
    ("approvals", "min_approvals", "revision", "passed", "counted", "ignored"),
    [
        pytest.param(
            [approval("bob", "team-platform")],
            1,
            1,
            True,
            [("bob", "team-platform")],
            [],
            id="a-team-member-approves",
        ),
        pytest.param(
            [approval("alice", "team-platform")],
            1,
            1,
            False,
            [],
            [("alice", "author")],
            id="the-authors-own-approval-is-ignored",
        ),
        pytest.param(
            [approval("alice", "team-platform"), approval("bob", "team-security")],
            2,
            1,
            False,
            [("bob", "team-security")],
            [("alice", "author")],
            id="the-author-does-not-make-up-the-second-approval",
        ),
        pytest.param(
            [approval("bob", "team-platform", revision=1)],
            1,
            2,
            False,
            [],
            [("bob", "stale-revision")],
            id="a-new-revision-dismisses-earlier-approvals",
        ),
        pytest.param(
            [
                approval("bob", "team-platform", revision=1),
                approval("carol", "team-security", revision=2),
            ],
            1,
            2,
            True,
            [("carol", "team-security")],
            [("bob", "stale-revision")],
            id="an-approval-of-the-new-revision-counts",
        ),
        pytest.param(
            [approval("dave", "team-marketing")],
            1,
            1,
            False,
            [],
            [("dave", "not-in-team")],
            id="an-approver-outside-the-listed-teams-is-ignored",
        ),
        pytest.param(
            [approval("bob", "team-platform"), approval("carol", "team-security")],
            2,
            1,
            True,
            [("bob", "team-platform"), ("carol", "team-security")],
            [],
            id="two-distinct-approvers-meet-min-approvals-2",
        ),
        pytest.param(
            [approval("bob", "team-platform"), approval("bob", "team-platform", at=NOW)],
            2,
            1,
            False,
            [("bob", "team-platform")],
            [],
            id="an-approver-counts-once",
        ),
        pytest.param(
            [approval("erin", "team-security", "team-platform")],
            1,
            1,
            True,
            [("erin", "team-platform")],
            [],
            id="the-first-listed-team-is-named",
        ),
        pytest.param([], 1, 1, False, [], [], id="no-approvals"),
    ],
)
async def test_pr_required(
    approvals: list[Approval],
    min_approvals: int,
    revision: int,
    passed: bool,
    counted: list[tuple[str, str]],
    ignored: list[tuple[str, str]],
) -> None:
    rule = PolicyRule("pr-required", {"approvers": TEAMS, "minApprovals": min_approvals})
    verdict = await PrRequired().evaluate(rule, context(change(*approvals, revision=revision)))
    assert verdict.kind == "pr-required"
    assert verdict.passed is passed
    assert [(row["approver"], row["team"]) for row in verdict.evidence["counted"]] == counted
    assert [
        (row["approver"], row["ignoredBecause"]) for row in verdict.evidence["ignored"]
    ] == ignored
    assert verdict.evidence["minApprovals"] == min_approvals
    assert verdict.evidence["revision"] == revision
    assert verdict.next_possible is None  # only people can make it pass
    if not passed:
        assert f"needs {min_approvals - len(counted)} more" in verdict.summary


async def test_pr_required_defaults_to_one_approval() -> None:
    rule = PolicyRule("pr-required", {"approvers": ["team-platform"]})
    verdict = await PrRequired().evaluate(rule, context(change(approval("bob", "team-platform"))))
    assert verdict.passed
    assert verdict.evidence["minApprovals"] == 1
    assert verdict.evidence["counted"] == [
        {
            "approver": "bob",
            "team": "team-platform",
            "revision": 1,
            "time": (NOW - hours(1)).isoformat(),
        }
    ]


async def test_pr_required_follows_the_embedded_committer_across_revisions(
    tmp_path: Path,
) -> None:
    """Through the real committer: an approval counts, then a new revision dismisses it."""
    from catalyst_kernel.model import Environment, FileAction, FileChange

    committer = GitCommitter(tmp_path / "git", lock_timeout=5.0)
    await committer.start()
    try:

        def request(content: str) -> CommitRequest:
            files = (FileChange("applications/web/values.yaml", FileAction.ADD, content),)
            return CommitRequest("acme-prod", "Promote web", files, "alice", "op-1")

        initial = CommitRequest(
            "acme-prod",
            "Create",
            (FileChange("policies/environment-policy.yaml", FileAction.ADD, "rules: []\n"),),
            "alice",
            "op-0",
        )
        await committer.create_repository(Environment.parse("acme-prod"), initial)
        opened = await committer.open_change(request("a: 1\n"), "Promote web")
        rule = PolicyRule("pr-required", {"approvers": TEAMS})
        for who, groups in (("alice", {"team-platform"}), ("bob", {"team-platform"})):
            opened = await committer.approve_change(
                "acme-prod", opened.id, Approval(who, 1, NOW, frozenset(groups))
            )
        verdict = await PrRequired().evaluate(rule, context(opened))
        assert verdict.passed
        assert [row["approver"] for row in verdict.evidence["ignored"]] == ["alice"]

        revised = await committer.update_change(opened.id, request("a: 2\n"))
        verdict = await PrRequired().evaluate(rule, context(revised))
        assert not verdict.passed
        assert verdict.evidence["revision"] == 2
    finally:
        await committer.close()


@pytest.mark.parametrize(
    ("params", "pointer", "message"),
    [
        ({}, "/approvers", "required"),
        ({"approvers": "team-platform"}, "/approvers", "list of team names"),
        ({"approvers": []}, "/approvers", "non-empty list"),
        ({"approvers": ["team-platform", 3]}, "/approvers/1", "non-empty string"),
        ({"approvers": ["team-a", "team-a"]}, "/approvers/1", "listed twice"),
        ({"approvers": TEAMS, "minApprovals": 0}, "/minApprovals", "at least 1"),
        ({"approvers": TEAMS, "minApprovals": "2"}, "/minApprovals", "whole number"),
        ({"approvers": TEAMS, "minApprovals": True}, "/minApprovals", "whole number"),
        ({"approvers": TEAMS, "approver": ["x"]}, "/approver", "unknown parameter"),
    ],
)
def test_pr_required_validation(params: dict[str, Any], pointer: str, message: str) -> None:
    assert message in problems(PrRequired(), params)[pointer]


# -------------------------------------------------------------------------------------------------
# soak
# -------------------------------------------------------------------------------------------------

SOAK = PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "72h"})


@pytest.mark.parametrize(
    ("entries", "passed", "since", "next_possible"),
    [
        pytest.param(
            [health(NOW - hours(80), "Running")],
            True,
            NOW - hours(80),
            None,
            id="running-longer-than-the-soak",
        ),
        pytest.param(
            [health(NOW - hours(72), "Running")],
            True,
            NOW - hours(72),
            None,
            id="exactly-at-the-end-of-the-soak",
        ),
        pytest.param(
            [health(NOW - hours(10), "Running")],
            False,
            NOW - hours(10),
            NOW + hours(62),
            id="still-soaking",
        ),
        pytest.param(
            [
                health(NOW - hours(100), "Running"),
                health(NOW - hours(50), "Degraded"),
                health(NOW - hours(40), "Running"),
            ],
            False,
            NOW - hours(40),
            NOW + hours(32),
            id="degraded-resets-the-soak",
        ),
        pytest.param(
            [
                health(NOW - hours(100), "Running"),
                health(NOW - hours(50), "Failed"),
                health(NOW - hours(49), "Running"),
            ],
            False,
            NOW - hours(49),
            NOW + hours(23),
            id="failed-resets-the-soak",
        ),
        pytest.param(
            [
                health(NOW - hours(200), "Running"),
                health(NOW - hours(100), "Pending approval"),
                health(NOW - hours(99), "Running"),
            ],
            True,
            NOW - hours(99),
            None,
            id="a-new-streak-passes-once-long-enough",
        ),
        pytest.param(
            [health(NOW - hours(100), "Running"), health(NOW - hours(5), "Degraded")],
            False,
            None,
            None,
            id="degraded-now",
        ),
        pytest.param(
            [health(NOW - hours(100), "Running", "1.1.0")],
            False,
            None,
            None,
            id="another-version-is-running",
        ),
        pytest.param(
            [
                health(NOW - hours(100), "Running"),
                health(NOW - hours(10), "Updating", "1.3.0"),
                health(NOW - hours(9), "Running", "1.3.0"),
            ],
            False,
            None,
            None,
            id="the-source-moved-on-to-another-version",
        ),
        pytest.param(
            [
                health(NOW - hours(100), "Running", "1.1.0"),
                health(NOW - hours(90), "Updating"),
                health(NOW - hours(80), "Running"),
            ],
            True,
            NOW - hours(80),
            None,
            id="the-streak-starts-at-the-version",
        ),
        pytest.param(
            [health(NOW - hours(100), "Running"), health(NOW - hours(1), None)],
            False,
            None,
            None,
            id="uninstalled-from-the-source",
        ),
        pytest.param(
            [health(NOW - hours(100), "Running"), health(NOW + hours(1), "Degraded")],
            True,
            NOW - hours(100),
            None,
            id="entries-after-now-are-not-seen-yet",
        ),
        pytest.param(
            [
                health(NOW - hours(100), "Running"),
                TimelineEntry(NOW - hours(50), "reconcile", "web", "1.2.0"),
                TimelineEntry(NOW - hours(40), "approval", "web"),
            ],
            True,
            NOW - hours(100),
            None,
            id="other-entries-do-not-reset",
        ),
        pytest.param([], False, None, None, id="no-history"),
    ],
)
async def test_soak(
    entries: list[TimelineEntry],
    passed: bool,
    since: datetime | None,
    next_possible: datetime | None,
) -> None:
    timeline = FakeTimeline({("acme-stg", "web"): entries})
    verdict = await Soak().evaluate(SOAK, context(timeline=timeline))
    assert timeline.reads == [("acme-stg", "web")]
    assert verdict.passed is passed
    assert verdict.next_possible == next_possible
    (row,) = verdict.evidence["applications"]
    assert row["runningSince"] == (since.isoformat() if since else None)
    assert row["soakEnds"] == ((since + hours(72)).isoformat() if since else None)
    assert (row["application"], row["version"], row["passed"]) == ("web", "1.2.0", passed)
    assert verdict.evidence["sourceEnvironment"] == "acme-stg"
    assert verdict.evidence["duration"] == "3d"


async def test_soak_explains_why_it_is_not_running() -> None:
    timeline = FakeTimeline(
        {
            ("acme-stg", "web"): [
                health(NOW - hours(100), "Running"),
                health(NOW - hours(5), "Degraded"),
            ]
        }
    )
    verdict = await Soak().evaluate(SOAK, context(timeline=timeline))
    assert "not Running in acme-stg" in verdict.summary
    assert "Degraded" in verdict.summary
    (row,) = verdict.evidence["applications"]
    assert (row["sourceStatus"], row["sourceVersion"]) == ("Degraded", "1.2.0")


def _apps(*pairs: tuple[str, str | None]) -> list[ApplicationChange]:
    return [ApplicationChange(name, ApplicationAction.PROMOTE, "bp", v) for name, v in pairs]


@pytest.mark.parametrize(
    ("applications", "passed", "next_possible"),
    [
        pytest.param(
            _apps(("web", "1.2.0"), ("api", "2.0.0")),
            False,
            NOW + hours(62),
            id="one-still-soaking",
        ),
        pytest.param(
            _apps(("api", "2.0.0"), ("db", "9.0")),
            False,
            NOW + hours(70),
            id="the-latest-soak-end-wins",
        ),
        pytest.param(
            _apps(("api", "2.0.0"), ("cache", "1.0")),
            False,
            None,
            id="one-not-running-means-no-date",
        ),
        pytest.param(_apps(("web", "1.2.0"), ("web-db", "1.0")), True, None, id="all-soaked"),
        pytest.param(_apps(("web", None)), False, None, id="a-change-without-a-version"),
        pytest.param(
            [ApplicationChange("cache", ApplicationAction.UNINSTALL)],
            True,
            None,
            id="uninstalls-need-no-soak",
        ),
        pytest.param([], True, None, id="no-application-nothing-to-soak"),
    ],
)
async def test_soak_over_several_applications(
    applications: list[ApplicationChange], passed: bool, next_possible: datetime | None
) -> None:
    timeline = FakeTimeline(
        {
            ("acme-stg", "web"): [health(NOW - hours(100), "Running")],
            ("acme-stg", "web-db"): [health(NOW - hours(80), "Running", "1.0", "web-db")],
            ("acme-stg", "api"): [health(NOW - hours(10), "Running", "2.0.0", "api")],
            ("acme-stg", "db"): [health(NOW - hours(2), "Running", "9.0", "db")],
            ("acme-stg", "cache"): [health(NOW - hours(2), "Degraded", "1.0", "cache")],
        }
    )
    the_change = change(applications=applications)
    verdict = await Soak().evaluate(SOAK, context(the_change, timeline=timeline))
    assert verdict.passed is passed
    assert verdict.next_possible == next_possible


@pytest.mark.parametrize(
    ("params", "rollback", "passed", "skipped"),
    [
        ({}, True, True, True),
        ({"skipOnRollback": True}, True, True, True),
        ({"skipOnRollback": False}, True, False, False),
        ({}, False, False, False),
    ],
)
async def test_soak_and_rollbacks(
    params: dict[str, Any], rollback: bool, passed: bool, skipped: bool
) -> None:
    rule = PolicyRule("soak", {**SOAK.params, **params})
    verdict = await Soak().evaluate(rule, context(rollback=rollback))
    assert verdict.passed is passed
    assert (verdict.evidence.get("skipped") == "rollback") is skipped
    if skipped:
        assert "rollback" in verdict.summary


@pytest.mark.parametrize(
    ("params", "pointer", "message"),
    [
        ({"duration": "72h"}, "/sourceEnvironment", "required"),
        ({"sourceEnvironment": "staging", "duration": "72h"}, "/sourceEnvironment", "staging"),
        ({"sourceEnvironment": 3, "duration": "72h"}, "/sourceEnvironment", "non-empty string"),
        ({"sourceEnvironment": "acme-stg"}, "/duration", "required"),
        ({"sourceEnvironment": "acme-stg", "duration": "72"}, "/duration", "30m, 72h, 1d"),
        ({"sourceEnvironment": "acme-stg", "duration": 72}, "/duration", "is not a duration"),
        ({"sourceEnvironment": "acme-stg", "duration": "0m"}, "/duration", "longer than zero"),
        (
            {"sourceEnvironment": "acme-stg", "duration": "1h", "skipOnRollback": "yes"},
            "/skipOnRollback",
            "true or false",
        ),
        ({"sourceEnvironment": "acme-stg", "duration": "1h", "source": "x"}, "/source", "unknown"),
    ],
)
def test_soak_validation(params: dict[str, Any], pointer: str, message: str) -> None:
    assert message in problems(Soak(), params)[pointer]


def test_soak_validation_reports_every_problem_at_once() -> None:
    found = problems(Soak(), {"sourceEnvironment": "staging", "duration": "3 days", "x": 1})
    assert set(found) == {"/sourceEnvironment", "/duration", "/x"}


# -------------------------------------------------------------------------------------------------
# change-window
# -------------------------------------------------------------------------------------------------

SECOND = timedelta(seconds=1)


def window(cron: str, duration: str, zone: str | None = None) -> PolicyRule:
    params = {"cron": cron, "duration": duration}
    if zone is not None:
        params["timeZone"] = zone
    return PolicyRule("change-window", params)


TUESDAY_THURSDAY = "0 14 * * 2,4"


@pytest.mark.parametrize(
    ("rule", "now", "passed", "window_start", "next_start"),
    [
        # UTC (the default zone): Tuesday 2026-12-01 and Thursday 2026-12-03, 14:00-16:00.
        pytest.param(
            window(TUESDAY_THURSDAY, "2h"),
            utc("2026-12-01T14:00:00Z"),
            True,
            "2026-12-01T14:00:00Z",
            "2026-12-03T14:00:00Z",
            id="utc-opening-instant",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h"),
            utc("2026-12-01T15:59:59Z"),
            True,
            "2026-12-01T14:00:00Z",
            "2026-12-03T14:00:00Z",
            id="utc-last-second",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h"),
            utc("2026-12-01T16:00:00Z"),
            False,
            "2026-12-01T14:00:00Z",
            "2026-12-03T14:00:00Z",
            id="utc-closing-instant",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h"),
            utc("2026-12-01T13:59:59Z"),
            False,
            "2026-11-26T14:00:00Z",
            "2026-12-01T14:00:00Z",
            id="utc-a-second-early",
        ),
        # Europe/Berlin in winter (CET, UTC+1): the same cron is 13:00-15:00 UTC …
        pytest.param(
            window(TUESDAY_THURSDAY, "2h", "Europe/Berlin"),
            utc("2026-12-01T13:00:00Z"),
            True,
            "2026-12-01T13:00:00Z",
            "2026-12-03T13:00:00Z",
            id="berlin-winter-open",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h", "Europe/Berlin"),
            utc("2026-12-01T15:00:00Z"),
            False,
            "2026-12-01T13:00:00Z",
            "2026-12-03T13:00:00Z",
            id="berlin-winter-closed",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h", "Europe/Berlin"),
            utc("2026-12-01T12:59:59Z"),
            False,
            "2026-11-26T13:00:00Z",
            "2026-12-01T13:00:00Z",
            id="berlin-winter-early",
        ),
        # … and in summer (CEST, UTC+2) 12:00-14:00 UTC.
        pytest.param(
            window(TUESDAY_THURSDAY, "2h", "Europe/Berlin"),
            utc("2026-07-07T12:00:00Z"),
            True,
            "2026-07-07T12:00:00Z",
            "2026-07-09T12:00:00Z",
            id="berlin-summer-open",
        ),
        pytest.param(
            window(TUESDAY_THURSDAY, "2h", "Europe/Berlin"),
            utc("2026-07-07T14:00:00Z"),
            False,
            "2026-07-07T12:00:00Z",
            "2026-07-09T12:00:00Z",
            id="berlin-summer-closed",
        ),
        # America/New_York, weekdays 09:00-17:00 local (EST, UTC-5).
        pytest.param(
            window("0 9 * * 1-5", "8h", "America/New_York"),
            utc("2026-12-01T14:00:00Z"),
            True,
            "2026-12-01T14:00:00Z",
            "2026-12-02T14:00:00Z",
            id="new-york-open",
        ),
        pytest.param(
            window("0 9 * * 1-5", "8h", "America/New_York"),
            utc("2026-12-01T22:00:00Z"),
            False,
            "2026-12-01T14:00:00Z",
            "2026-12-02T14:00:00Z",
            id="new-york-closed",
        ),
        pytest.param(
            window("0 9 * * 1-5", "8h", "America/New_York"),
            utc("2026-12-01T13:59:59Z"),
            False,
            "2026-11-30T14:00:00Z",
            "2026-12-01T14:00:00Z",
            id="new-york-early",
        ),
        pytest.param(
            window("0 9 * * 1-5", "8h", "America/New_York"),
            utc("2026-12-05T15:00:00Z"),
            False,
            "2026-12-04T14:00:00Z",
            "2026-12-07T14:00:00Z",
            id="new-york-saturday",
        ),
        # Spring forward, Berlin 2026-03-29: 02:30 does not exist; the window opens when the
        # clocks jump (03:00 CEST = 01:00 UTC) and still lasts an hour.
        pytest.param(
            window("30 2 * * *", "1h", "Europe/Berlin"),
            utc("2026-03-29T00:59:59Z"),
            False,
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            id="berlin-spring-forward-before",
        ),
        pytest.param(
            window("30 2 * * *", "1h", "Europe/Berlin"),
            utc("2026-03-29T01:00:00Z"),
            True,
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            id="berlin-spring-forward-opens-at-the-jump",
        ),
        pytest.param(
            window("30 2 * * *", "1h", "Europe/Berlin"),
            utc("2026-03-29T02:00:00Z"),
            False,
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            id="berlin-spring-forward-lasts-its-duration",
        ),
        # Fall back, Berlin 2026-10-25: 02:00-03:00 happens twice. A window opening at 01:00
        # CEST for 3h spans the repeated hour and closes after 3 elapsed hours (03:00 CET).
        pytest.param(
            window("0 1 * * *", "3h", "Europe/Berlin"),
            utc("2026-10-25T00:30:00Z"),
            True,
            "2026-10-24T23:00:00Z",
            "2026-10-26T00:00:00Z",
            id="berlin-fall-back-first-pass",
        ),
        pytest.param(
            window("0 1 * * *", "3h", "Europe/Berlin"),
            utc("2026-10-25T01:30:00Z"),
            True,
            "2026-10-24T23:00:00Z",
            "2026-10-26T00:00:00Z",
            id="berlin-fall-back-second-pass",
        ),
        pytest.param(
            window("0 1 * * *", "3h", "Europe/Berlin"),
            utc("2026-10-25T02:00:00Z"),
            False,
            "2026-10-24T23:00:00Z",
            "2026-10-26T00:00:00Z",
            id="berlin-fall-back-closes-after-elapsed-duration",
        ),
        # A start inside the repeated hour opens one window (the first 02:30), not two.
        pytest.param(
            window("30 2 * * *", "30m", "Europe/Berlin"),
            utc("2026-10-25T00:45:00Z"),
            True,
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
            id="berlin-repeated-hour-first-0230",
        ),
        pytest.param(
            window("30 2 * * *", "30m", "Europe/Berlin"),
            utc("2026-10-25T01:45:00Z"),
            False,
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
            id="berlin-repeated-hour-no-second-0230",
        ),
        # New York, spring forward 2026-03-08 and fall back 2026-11-01.
        pytest.param(
            window("30 2 * * *", "1h", "America/New_York"),
            utc("2026-03-08T06:59:59Z"),
            False,
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            id="new-york-spring-forward-before",
        ),
        pytest.param(
            window("30 2 * * *", "1h", "America/New_York"),
            utc("2026-03-08T07:00:00Z"),
            True,
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
            id="new-york-spring-forward-opens-at-the-jump",
        ),
        pytest.param(
            window("30 1 * * *", "1h", "America/New_York"),
            utc("2026-11-01T06:15:00Z"),
            True,
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
            id="new-york-fall-back-first-pass-window-open",
        ),
        pytest.param(
            window("30 1 * * *", "1h", "America/New_York"),
            utc("2026-11-01T06:45:00Z"),
            False,
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
            id="new-york-fall-back-no-second-window",
        ),
    ],
)
async def test_change_window(
    rule: PolicyRule, now: datetime, passed: bool, window_start: str, next_start: str
) -> None:
    verdict = await ChangeWindow().evaluate(rule, context(now=now))
    assert verdict.passed is passed
    evidence = verdict.evidence
    assert evidence["window"]["start"] == utc(window_start).isoformat()
    assert evidence["nextWindow"]["start"] == utc(next_start).isoformat()
    assert verdict.next_possible == (None if passed else utc(next_start))
    zone = ZoneInfo(evidence["timeZone"])
    assert evidence["window"]["startLocal"] == utc(window_start).astimezone(zone).isoformat()


async def test_change_window_evidence_in_utc_and_the_zone() -> None:
    rule = window("30 2 * * *", "1h", "Europe/Berlin")
    verdict = await ChangeWindow().evaluate(rule, context(now=utc("2026-03-29T01:30:00Z")))
    assert verdict.evidence == {
        "cron": "30 2 * * *",
        "duration": "1h",
        "timeZone": "Europe/Berlin",
        "now": "2026-03-29T01:30:00+00:00",
        "nowLocal": "2026-03-29T03:30:00+02:00",
        "window": {
            "start": "2026-03-29T01:00:00+00:00",
            "end": "2026-03-29T02:00:00+00:00",
            "startLocal": "2026-03-29T03:00:00+02:00",
            "endLocal": "2026-03-29T04:00:00+02:00",
        },
        "nextWindow": {
            "start": "2026-03-30T00:30:00+00:00",
            "end": "2026-03-30T01:30:00+00:00",
            "startLocal": "2026-03-30T02:30:00+02:00",
            "endLocal": "2026-03-30T03:30:00+02:00",
        },
    }
    assert "until 2026-03-29T04:00:00+02:00" in verdict.summary


async def test_change_window_names_the_next_window_when_closed() -> None:
    rule = window(TUESDAY_THURSDAY, "2h", "Europe/Berlin")
    verdict = await ChangeWindow().evaluate(rule, context(now=utc("2026-12-02T09:00:00Z")))
    assert not verdict.passed
    assert "next opens at 2026-12-03T14:00:00+01:00" in verdict.summary
    assert verdict.next_possible == utc("2026-12-03T13:00:00Z")


async def test_change_window_accepts_a_now_in_any_zone() -> None:
    rule = window(TUESDAY_THURSDAY, "2h", "Europe/Berlin")
    local_now = datetime(2026, 12, 1, 14, 30, tzinfo=BERLIN)
    assert (await ChangeWindow().evaluate(rule, context(now=local_now))).passed
    assert (await ChangeWindow().evaluate(rule, context(now=local_now.astimezone(NEW_YORK)))).passed


@pytest.mark.parametrize(
    ("params", "pointer", "message"),
    [
        ({"duration": "2h"}, "/cron", "required"),
        ({"cron": "0 14 * *", "duration": "2h"}, "/cron", "5 fields"),
        ({"cron": "0 0 14 * * 2", "duration": "2h"}, "/cron", "5 fields"),
        ({"cron": "@daily", "duration": "2h"}, "/cron", "5 fields"),
        ({"cron": "61 * * * *", "duration": "2h"}, "/cron", "not valid"),
        ({"cron": "0 0 31 2 *", "duration": "2h"}, "/cron", "not valid"),
        ({"cron": "x y z w v", "duration": "2h"}, "/cron", "not valid"),
        ({"cron": 5, "duration": "2h"}, "/cron", "non-empty string"),
        ({"cron": TUESDAY_THURSDAY}, "/duration", "required"),
        ({"cron": TUESDAY_THURSDAY, "duration": "2 hours"}, "/duration", "is not a duration"),
        (
            {"cron": TUESDAY_THURSDAY, "duration": "2h", "timeZone": "Mars/Olympus"},
            "/timeZone",
            "unknown time zone",
        ),
        (
            {"cron": TUESDAY_THURSDAY, "duration": "2h", "timeZone": "../../etc/passwd"},
            "/timeZone",
            "unknown time zone",
        ),
        (
            {"cron": TUESDAY_THURSDAY, "duration": "2h", "timeZone": 1},
            "/timeZone",
            "non-empty string",
        ),
        ({"cron": TUESDAY_THURSDAY, "duration": "2h", "tz": "UTC"}, "/tz", "unknown parameter"),
    ],
)
def test_change_window_validation(params: dict[str, Any], pointer: str, message: str) -> None:
    assert message in problems(ChangeWindow(), params)[pointer]


# -------------------------------------------------------------------------------------------------
# freeze
# -------------------------------------------------------------------------------------------------

UNTIL = NOW + hours(48)
FREEZE = {"reason": "Black Friday", "breakGlass": {"approvers": ["team-sre"]}}


def glass(
    approver: str = "bob",
    *groups: str,
    reason: str | None = "INC-42: checkout is down",
    expires: datetime | None = GLASS_EXPIRES,
    revision: int = 1,
) -> Approval:
    return approval(
        approver, *(groups or ("team-sre",)), revision=revision, reason=reason, expires=expires
    )


@pytest.mark.parametrize(
    ("params", "approvals", "passed", "next_possible", "ignored"),
    [
        pytest.param(FREEZE, [], False, None, [], id="frozen"),
        pytest.param(
            {**FREEZE, "until": UNTIL.isoformat()}, [], False, UNTIL, [], id="frozen-until-a-date"
        ),
        pytest.param(
            {**FREEZE, "until": (NOW - SECOND).isoformat()},
            [],
            True,
            None,
            [],
            id="the-freeze-has-ended",
        ),
        pytest.param(
            {**FREEZE, "until": NOW.isoformat()}, [], True, None, [], id="the-freeze-ends-at-until"
        ),
        pytest.param(FREEZE, [glass()], True, None, [], id="break-glass"),
        pytest.param(
            FREEZE,
            [approval("bob", "team-sre")],
            False,
            None,
            [],
            id="an-ordinary-approval-is-no-break-glass",
        ),
        pytest.param(
            FREEZE,
            [glass(expires=NOW - SECOND)],
            False,
            None,
            ["expired"],
            id="an-expired-break-glass",
        ),
        pytest.param(
            FREEZE,
            [glass(expires=NOW)],
            False,
            None,
            ["expired"],
            id="a-break-glass-expires-at-its-expiry",
        ),
        pytest.param(
            FREEZE,
            [glass(reason=None)],
            False,
            None,
            ["no-reason"],
            id="a-break-glass-needs-a-reason",
        ),
        pytest.param(
            FREEZE,
            [glass(reason="   ")],
            False,
            None,
            ["no-reason"],
            id="a-blank-reason-is-no-reason",
        ),
        pytest.param(
            FREEZE,
            [glass(expires=None)],
            False,
            None,
            ["no-expiry"],
            id="a-break-glass-needs-an-expiry",
        ),
        pytest.param(
            FREEZE,
            [glass("alice")],
            False,
            None,
            ["author"],
            id="the-author-cannot-break-the-glass",
        ),
        pytest.param(
            FREEZE,
            [glass("dave", "team-marketing")],
            False,
            None,
            ["not-in-team"],
            id="only-the-named-teams-break-the-glass",
        ),
        pytest.param(
            FREEZE,
            [glass(revision=0)],
            False,
            None,
            ["stale-revision"],
            id="a-break-glass-of-another-revision",
        ),
        pytest.param(
            {"reason": "Black Friday"}, [glass()], False, None, [], id="no-break-glass-allowed"
        ),
        pytest.param(
            {**FREEZE, "until": UNTIL.isoformat()},
            [glass(expires=NOW - SECOND), glass("carol")],
            True,
            None,
            ["expired"],
            id="one-valid-break-glass-is-enough",
        ),
    ],
)
async def test_freeze(
    params: dict[str, Any],
    approvals: list[Approval],
    passed: bool,
    next_possible: datetime | None,
    ignored: list[str],
) -> None:
    verdict = await Freeze().evaluate(PolicyRule("freeze", params), context(change(*approvals)))
    assert verdict.passed is passed
    assert verdict.next_possible == next_possible
    assert [row["ignoredBecause"] for row in verdict.evidence["ignored"]] == ignored
    assert verdict.evidence["reason"] == "Black Friday"
    assert verdict.evidence["scope"] == "environment"


async def test_break_glass_evidence_names_who_why_and_until_when() -> None:
    verdict = await Freeze().evaluate(
        PolicyRule("freeze", {**FREEZE, "scope": "organization", "until": "2026-12-03T12:00:00Z"}),
        context(change(glass(), approval("carol", "team-sre"))),
    )
    assert verdict.passed
    assert verdict.evidence == {
        "scope": "organization",
        "reason": "Black Friday",
        "until": "2026-12-03T12:00:00+00:00",
        "breakGlassApprovers": ["team-sre"],
        "active": True,
        "breakGlass": {
            "approver": "bob",
            "team": "team-sre",
            "revision": 1,
            "time": (NOW - hours(1)).isoformat(),
            "reason": "INC-42: checkout is down",
            "expires": (NOW + hours(4)).isoformat(),
        },
        "ignored": [],
    }
    assert "break-glass approval of bob (team-sre)" in verdict.summary
    assert "INC-42" in verdict.summary


async def test_break_glass_stops_working_at_its_expiry() -> None:
    rule = PolicyRule("freeze", FREEZE)
    the_change = change(glass(expires=NOW + hours(4)))
    assert (await Freeze().evaluate(rule, context(the_change, now=NOW + hours(3)))).passed
    assert not (await Freeze().evaluate(rule, context(the_change, now=NOW + hours(4)))).passed


async def test_freeze_until_may_come_from_yaml_as_a_date_time() -> None:
    params = yaml.safe_load("reason: Year end\nuntil: 2026-12-24T18:00:00+01:00\n")
    assert isinstance(params["until"], datetime)
    Freeze().validate(PolicyRule("freeze", params))
    verdict = await Freeze().evaluate(PolicyRule("freeze", params), context())
    assert verdict.next_possible == utc("2026-12-24T17:00:00Z")


@pytest.mark.parametrize(
    ("params", "pointer", "message"),
    [
        ({}, "/reason", "required"),
        ({"reason": ""}, "/reason", "non-empty string"),
        ({"reason": "x", "scope": "global"}, "/scope", "organization"),
        ({"reason": "x", "until": "tomorrow"}, "/until", "ISO 8601"),
        ({"reason": "x", "until": "2026-12-24T18:00:00"}, "/until", "time zone"),
        ({"reason": "x", "until": datetime(2026, 12, 24).date()}, "/until", "date without a time"),
        ({"reason": "x", "until": 5}, "/until", "ISO 8601"),
        ({"reason": "x", "breakGlass": "team-sre"}, "/breakGlass", "mapping"),
        ({"reason": "x", "breakGlass": {}}, "/breakGlass/approvers", "required"),
        (
            {"reason": "x", "breakGlass": {"approvers": [""]}},
            "/breakGlass/approvers/0",
            "non-empty string",
        ),
        (
            {"reason": "x", "breakGlass": {"approvers": ["t"], "maxHours": 4}},
            "/breakGlass/maxHours",
            "unknown parameter",
        ),
        ({"reason": "x", "because": "y"}, "/because", "unknown parameter"),
    ],
)
def test_freeze_validation(params: dict[str, Any], pointer: str, message: str) -> None:
    assert message in problems(Freeze(), params)[pointer]


# -------------------------------------------------------------------------------------------------
# Every built-in kind passes the rule-kind conformance suite
# -------------------------------------------------------------------------------------------------


class _Conformance(RuleKindConformance):
    @pytest.fixture
    def context(self) -> RuleContext:
        return context(timeline=FakeTimeline({("acme-stg", "web"): [health(NOW, "Running")]}))


class TestPrRequiredConformance(_Conformance):
    @pytest.fixture
    def provider(self) -> RuleKind:
        return PrRequired()

    @pytest.fixture
    def rule(self) -> PolicyRule:
        return PolicyRule("pr-required", {"approvers": TEAMS, "minApprovals": 2})

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        return PolicyRule("pr-required", {"approvers": TEAMS, "minApprovals": -1})


class TestSoakConformance(_Conformance):
    @pytest.fixture
    def provider(self) -> RuleKind:
        return Soak()

    @pytest.fixture
    def rule(self) -> PolicyRule:
        return SOAK

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        return PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "72"})


class TestChangeWindowConformance(_Conformance):
    @pytest.fixture
    def provider(self) -> RuleKind:
        return ChangeWindow()

    @pytest.fixture
    def rule(self) -> PolicyRule:
        return window(TUESDAY_THURSDAY, "2h", "Europe/Berlin")

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        return window("0 14 * *", "2h")


class TestFreezeConformance(_Conformance):
    @pytest.fixture
    def provider(self) -> RuleKind:
        return Freeze()

    @pytest.fixture
    def rule(self) -> PolicyRule:
        return PolicyRule("freeze", FREEZE)

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        return PolicyRule("freeze", {"scope": "organization"})
