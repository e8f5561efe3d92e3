"""Gitea's failures become typed kernel errors: a rejected token, a missing repository, Gitea
unreachable (readiness false), rate limiting; and no secret ends up in a message or a log."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.errors import GiteaUnreachable, PushRejected, RateLimited, TokenRejected
from catalyst_gitea.settings import GiteaSettings
from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.errors import BackendUnavailable, InvalidInput, NotFound
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.model.tenancy import Environment
from catalyst_kernel.provisioning.committer import CommitRequest

from .conftest import CATALYST_TOKEN, REVIEWER_TOKEN, WEBHOOK_SECRET, CommitterMaker

pytestmark = pytest.mark.anyio

ENV = "acme-dev"


def request(path: str = "applications/web/values.yaml", actor: str = "alice") -> CommitRequest:
    return CommitRequest(
        environment=ENV,
        message="Change",
        files=(FileChange(path, FileAction.ADD, "a: 1\n"),),
        actor=actor,
        operation_id=f"op-{uuid.uuid4().hex[:8]}",
    )


async def create(committer: GiteaCommitter) -> None:
    await committer.create_repository(Environment.parse(ENV), request("policies/p.yaml"))


async def test_a_rejected_token_makes_the_committer_unready_and_operations_fail_typed(
    make_committer: CommitterMaker,
) -> None:
    async with make_committer(token="not-the-token") as committer:
        readiness = await committer.check()
        assert not readiness.ready
        assert "rejected Catalyst's token (401)" in (readiness.reason or "")
        with pytest.raises(TokenRejected, match="token"):
            await committer.repository_exists(ENV)
        assert isinstance(TokenRejected("x"), BackendUnavailable)


async def test_a_token_rejected_by_git_is_token_rejected_too(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        # The API still accepts the token; Git does not (a token without repository scope).
        assert committer._git is not None
        committer._git._token = "wrong"
        with pytest.raises(TokenRejected, match="git"):
            await committer.commit(request())


async def test_a_missing_repository_is_not_found(make_committer: CommitterMaker) -> None:
    async with make_committer() as committer:
        with pytest.raises(NotFound, match="acme-dev"):
            await committer.commit(request())
        with pytest.raises(NotFound):
            await committer.get_change(ENV, "1")
        assert not await committer.repository_exists(ENV)


async def test_gitea_unreachable_is_backend_unavailable_and_readiness_false(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        assert (await committer.check()).ready
        standin.stop()
        try:
            readiness = await committer.check()
            assert not readiness.ready
            assert standin.url in (readiness.reason or "")
            started = time.monotonic()
            with pytest.raises(GiteaUnreachable):
                await committer.repository_exists(ENV)
            with pytest.raises(GiteaUnreachable):
                await committer.commit(request())  # the push cannot connect either
            assert time.monotonic() - started < 10
        finally:
            standin.start()
        assert (await committer.check()).ready
        await committer.commit(request())


async def test_rate_limiting_is_waited_out_as_gitea_asks(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        standin.fail_next(429, times=2, path="/repos/", retry_after=0.3)
        started = time.monotonic()
        assert not await committer.repository_exists(ENV)
        assert time.monotonic() - started >= 0.6


async def test_rate_limiting_beyond_the_retries_is_rate_limited(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer(max_retries=1) as committer:
        standin.fail_next(429, times=2, path="/repos/", retry_after=0.05)
        with pytest.raises(RateLimited) as raised:
            await committer.repository_exists(ENV)
        assert raised.value.retry_after == pytest.approx(0.05)
        # A wait longer than rate_limit_max_wait is reported at once, not slept through.
        standin.fail_next(429, times=1, path="/repos/", retry_after=3600)
        started = time.monotonic()
        with pytest.raises(RateLimited, match="3600"):
            await committer.repository_exists(ENV)
        assert time.monotonic() - started < 1


async def test_transient_server_errors_are_retried_for_reads_only(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer(max_retries=3) as committer:
        standin.fail_next(503, times=2, method="GET", path="/repos/")
        assert not await committer.repository_exists(ENV)
        await committer._ensure_organization("acme")
        standin.fail_next(503, times=1, method="POST", path="/orgs/acme/repos")
        with pytest.raises(GiteaUnreachable, match="503"):
            await committer._ensure_repository(Environment.parse(ENV))
    posts = [r for r in standin.requests if r[1] == "POST" and r[2].startswith("/api/v1/orgs/acme")]
    assert len(posts) == 1  # a POST that may have been processed is not repeated


async def test_a_push_refused_by_protection_is_push_rejected(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        repo = standin.repository("acme", ENV)
        standin._create_protection(  # only Dana may push (an operator's mistake)
            "acme",
            ENV,
            body={
                "rule_name": "main",
                "enable_push": True,
                "enable_push_whitelist": True,
                "push_whitelist_usernames": ["dana"],
            },
            user=standin.users["catalyst"],
        )
        assert "main" in repo.protections
        with pytest.raises(PushRejected, match="protected branch main"):
            await committer.commit(request())


async def test_no_secret_in_reprs_errors_or_logs(
    make_committer: CommitterMaker,
    standin: GiteaStandIn,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = GiteaSettings(
        url=standin.url,
        token=CATALYST_TOKEN,
        reviewer_token=REVIEWER_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
    )
    committer = GiteaCommitter(settings, data_dir=tmp_path)
    messages = [repr(settings), repr(committer), str(settings)]
    async with make_committer(token="wrong-token-0123456789") as bad:
        with pytest.raises(TokenRejected) as raised:
            await bad.repository_exists(ENV)
        messages.append(str(raised.value))
    async with make_committer(webhook_secret=WEBHOOK_SECRET) as good:
        await create(good)
        assert good._git is not None
        good._git._token = "wrong-token-0123456789"
        with pytest.raises(TokenRejected) as raised:
            await good.commit(request())
        messages.append(str(raised.value))
    messages.extend(record.getMessage() for record in caplog.records)
    text = "\n".join(messages)
    for secret in (CATALYST_TOKEN, REVIEWER_TOKEN, WEBHOOK_SECRET, "wrong-token-0123456789"):
        assert secret not in text


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"url": "ftp://git.example"}, "url"),
        ({"url": "https://user:pw@git.example"}, "url"),
        ({"token": "a", "token_file": Path("/x")}, "token_file"),
        ({"webhook_secret": "short"}, "webhook_secret"),
        ({"status_url_template": "{nope}"}, "status_url_template"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_settings_are_invalid_input_naming_the_key(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        GiteaSettings(**options)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert "pw" not in str(raised.value)


async def test_start_needs_a_url_and_a_token(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="url"):
        await GiteaCommitter(GiteaSettings(token="t"), data_dir=tmp_path).start()
    with pytest.raises(InvalidInput, match="token"):
        await GiteaCommitter(GiteaSettings(url="http://x"), data_dir=tmp_path).start()
    token_file = tmp_path / "token"
    token_file.write_text(f"{CATALYST_TOKEN}\n")
    committer = GiteaCommitter(
        GiteaSettings(url="http://127.0.0.1:9", token_file=token_file), data_dir=tmp_path
    )
    await committer.start()
    assert committer._token == CATALYST_TOKEN
    await committer.close()
