"""passwd/group parsing and the two user resolutions (RUN's and --chown's)."""

from __future__ import annotations

import pytest

from core.build.users import Accounts, chown_owner, run_user
from core.errors import StepError

ACCOUNTS = Accounts.parse(
    "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\n"
    "app:x:1001:1002:App:/home/app:/bin/sh\nnohome:x:1003:1003:::/bin/sh\n",
    "root:x:0:\nwheel:x:10:app,other\napp:x:1002:\nextra:x:20:app\n")


def test_run_user() -> None:
    assert run_user("", ACCOUNTS).home == "/root"
    app = run_user("app", ACCOUNTS)
    assert (app.uid, app.gid, app.groups, app.home) == (1001, 1002, (10, 20), "/home/app")
    assert run_user("app:wheel", ACCOUNTS).gid == 10
    numeric = run_user("4242", ACCOUNTS)
    assert (numeric.uid, numeric.gid, numeric.home) == (4242, 0, "/")
    assert run_user("1001", ACCOUNTS).home == "/home/app"
    assert run_user("nohome", ACCOUNTS).home == "/"
    with pytest.raises(StepError, match="unable to find user ghost"):
        run_user("ghost", ACCOUNTS)


def test_chown_owner() -> None:
    assert chown_owner("app", ACCOUNTS) == (1001, 1002)
    assert chown_owner("app:wheel", ACCOUNTS) == (1001, 10)
    assert chown_owner("42", ACCOUNTS) == (42, 42)
    assert chown_owner("42:7", ACCOUNTS) == (42, 7)
    assert chown_owner(":wheel", ACCOUNTS) == (0, 10)
    with pytest.raises(StepError, match="unknown user 'ghost'"):
        chown_owner("ghost", ACCOUNTS)
    with pytest.raises(StepError, match="unknown group 'nope'"):
        chown_owner("app:nope", ACCOUNTS)
