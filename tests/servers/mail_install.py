"""Installs Debian's Postfix and Dovecot for the mail tests when they are missing; nothing else installs them.

The tests need the real servers (a stand-in would only prove our client agrees with our stand-in),
and the project's own files must install what its tests need: a new machine has neither. So the
first session that wants them runs ``apt-get update`` and ``apt-get install`` once, as root, and
every later one finds the binaries and pays nothing.

What the install must not do:

- prompt: Postfix's package asks what kind of mail system this is; debconf is told "No
  configuration" first (so it also writes no ``/etc/postfix/main.cf`` a system daemon could start on);
- start the system-wide daemons: the install runs under a ``policy-rc.d`` that refuses every
  start (Debian's own way; a container usually has one already, it is then left as it is). The
  test servers never use the system's configuration, ports or directories either way;
- run twice at once: two pytest processes on one machine would race for apt's lock, so the
  install holds a file lock and looks again once it has it; and apt waits for dpkg's own lock
  (``DPkg::Lock::Timeout``) when something else on the machine is installing packages.

When installing is impossible (not root, no apt-get, no network), :class:`MailSystemUnavailable`
says which step failed; the fixture turns it into a skip with that reason.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

PACKAGES = ("postfix", "dovecot-imapd", "dovecot-lmtpd")
#: a file of each package the tests run: their presence means "installed"
BINARIES = (Path("/usr/sbin/postfix"), Path("/usr/sbin/dovecot"), Path("/usr/lib/dovecot/imap"),
            Path("/usr/lib/dovecot/lmtp"))
DEBCONF = "postfix postfix/main_mailer_type select No configuration\n"
_DEBCONF_SET = ["debconf-set-selections"]
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_LOCK = Path("/tmp/airflow-alerter-mail-install.lock")
#: apt-get update and install together; a mirror that hangs must not hang the test session
_APT_TIMEOUT = 600
#: apt's options: wait for another apt or dpkg on the machine rather than fail at once
_APT = ["apt-get", "-o", f"DPkg::Lock::Timeout={_APT_TIMEOUT // 2}"]


class MailSystemUnavailable(RuntimeError):
    """The real mail servers cannot be had here; the message names the step that failed and why."""


def missing() -> list[str]:
    return [str(path) for path in BINARIES if not path.exists()]


def ensure_installed() -> float:
    """Install the packages when a binary is missing; the seconds it took (0.0 when nothing was missing)."""
    if not missing():
        return 0.0
    if os.geteuid() != 0:
        raise MailSystemUnavailable(f"{', '.join(missing())} missing and not root: cannot apt-get install "
                                    f"{' '.join(PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise MailSystemUnavailable(f"{', '.join(missing())} missing and no apt-get to install {' '.join(PACKAGES)}")
    started = time.monotonic()
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing right now
        if missing():
            _install()
    return time.monotonic() - started


def _install() -> None:
    _run(_DEBCONF_SET, "debconf-set-selections (postfix: No configuration)", stdin=DEBCONF)
    _run([*_APT, "update"], "apt-get update")
    made_policy = not POLICY_RC_D.exists()
    if made_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# airflow-alerter tests: no daemon starts during the install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        _run([*_APT, "install", "-y", "--no-install-recommends", *PACKAGES], f"apt-get install {' '.join(PACKAGES)}")
    finally:
        if made_policy:
            POLICY_RC_D.unlink()
    if missing():
        raise MailSystemUnavailable(f"apt-get install {' '.join(PACKAGES)} succeeded but {', '.join(missing())} "
                                    f"is still missing")


def _run(command: list[str], step: str, stdin: str | None = None) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=_APT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MailSystemUnavailable(f"{step} failed: {err}") from err
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise MailSystemUnavailable(f"{step} failed (exit {done.returncode}): {lines[-1] if lines else 'no output'}")
