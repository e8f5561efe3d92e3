"""The blocks Catalyst keeps in pull request and review bodies round-trip, whatever the text
around them holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from catalyst_gitea.records import (
    ApprovalRecord,
    ChangeRecord,
    approval_body,
    change_body,
    read_approval,
    read_change,
    record_key,
)
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
)

NOW = datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)
TRICKY = 'Promote <web> --> prod\n\n<!-- catalyst-change\n{"format": 1}\n-->\nend'


def test_a_change_record_round_trips_around_any_description() -> None:
    record = ChangeRecord(
        author="alice@acme",
        revision=3,
        head="a" * 40,
        base="b" * 40,
        message=TRICKY,
        operation_id="op-1",
        plan_digest="sha256:" + "c" * 64,
        trailers={"Catalyst-Promoted-From": "acme-stg"},
        applications=(ApplicationChange("web", ApplicationAction.PROMOTE, "bp-web", "1.2.0"),),
    )
    body = change_body(TRICKY, record)
    assert "-->" not in body.split("<!-- catalyst-change\n")[-1][:-4]
    description, parsed = read_change(body)
    assert (description, parsed) == (TRICKY, record)


def test_text_without_a_block_at_its_end_has_no_record() -> None:
    assert read_change(TRICKY) == (TRICKY, None)
    assert read_change(None) == ("", None)
    assert read_change('x\n\n<!-- catalyst-change\n{"format": 2}\n-->')[1] is None


def test_an_approval_round_trips_with_break_glass_fields() -> None:
    approval = Approval(
        "bob",
        2,
        NOW,
        frozenset({"team-sre", "ops"}),
        reason="INC-42 <checkout> is down -->",
        expires=NOW + timedelta(hours=4),
    )
    body = approval_body(ApprovalRecord(approval, "d" * 40))
    assert body.startswith("Break-glass approval by bob (ops, team-sre) in Catalyst, revision 2.")
    assert read_approval(body) == ApprovalRecord(approval, "d" * 40)
    assert read_approval("Looks good to me.") is None


def test_an_edited_record_is_not_catalysts() -> None:
    key = record_key("catalyst-token")
    record = ChangeRecord(
        author="alice@acme",
        revision=1,
        head="a" * 40,
        base="b" * 40,
        message="Promote web",
        operation_id="op-1",
        plan_digest=None,
        trailers={},
        applications=(ApplicationChange("web", ApplicationAction.PROMOTE, "bp-web", "1.2.0"),),
    )
    body = change_body("Promote web", record, key=key)
    assert read_change(body, key=key)[1] == record
    for forged in (
        body.replace('"author":"alice@acme"', '"author":"mallory@acme"'),
        body.replace('"action":"promote"', '"action":"rollback"'),
        change_body("Promote web", record),  # unsigned
        body,  # signed with another key
    ):
        other = key if forged is not body else record_key("another-token")
        assert read_change(forged, key=other)[1] is None
    approval = ApprovalRecord(Approval("bob", 1, NOW, frozenset({"team-sre"})), "a" * 40)
    signed = approval_body(approval, key=key)
    assert read_approval(signed, key=key) == approval
    assert read_approval(signed.replace("team-sre", "team-sec"), key=key) is None
