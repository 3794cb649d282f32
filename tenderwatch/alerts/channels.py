"""Delivery channels: parse/validate, mask secrets, and send one rendered message.

Decision (see README "Alerts"): **email goes through smtplib**, every other scheme through **apprise**.
apprise's ``mailto://`` derives the plain-text part from the HTML itself and offers no
``List-Unsubscribe-Post`` one-click header, while subscribers need both a real text part and RFC 8058
one-click unsubscribe; smtplib gives both, and one SMTP connection is reused for a whole dispatch batch
(:class:`Mailer`). Teams goes through apprise ``workflows://``, which posts an Adaptive Card (title +
Markdown body with the facts and links) to the Power Automate webhook.

Secrets: webhook URLs and the SMTP password never reach logs or error texts — apprise's log records are
scrubbed while we send (:func:`scrubbed_apprise_logs`) and every error text goes through :func:`scrub`.
"""

from __future__ import annotations

import contextlib
import logging
import quopri
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from tenderwatch.config import get_settings
from tenderwatch.storage.subscriptions import Channel

log = logging.getLogger(__name__)

EMAIL_PREFIX = "email:"
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


class ChannelError(ValueError):
    """A channel string that cannot be used; the message is safe to show (no secrets)."""


@dataclass(frozen=True)
class ParsedChannel:
    kind: str  # "email" | "apprise"
    target: str  # the address (email) or the apprise URL (secret)


def is_email(address: str) -> bool:
    return bool(_EMAIL_RE.match(address)) and len(address) <= 254


def parse_channel(text: str) -> ParsedChannel:
    """``email:addr`` or an apprise URL apprise can load; ``msteams://`` is refused with the fix."""
    value = (text or "").strip()
    if value.lower().startswith(EMAIL_PREFIX):
        address = value[len(EMAIL_PREFIX) :].strip()
        if not is_email(address):
            raise ChannelError(f"invalid email address {address!r}")
        return ParsedChannel("email", address)
    if "://" not in value:
        if is_email(value):
            raise ChannelError(f"write email channels as 'email:{value}'")
        raise ChannelError("not a channel: expected 'email:address' or an apprise URL (scheme://…)")
    scheme = value.split("://", 1)[0].lower()
    if scheme in ("msteams", "teams"):
        raise ChannelError(
            "msteams:// no longer exists (Microsoft retired Office 365 connectors; apprise removed it): "
            "create a Teams Workflows webhook and use workflows://… (or its https:// URL)"
        )
    if scheme in ("mailto", "mailtos"):
        raise ChannelError("use 'email:address' for email; the SMTP relay comes from TENDERWATCH_SMTP_URL")
    if not _apprise_accepts(value):
        raise ChannelError(f"unknown or invalid apprise URL (scheme {scheme}://)")
    return ParsedChannel("apprise", value)


def _apprise_accepts(url: str) -> bool:
    import apprise

    with scrubbed_apprise_logs({url}):
        return bool(apprise.Apprise().add(url))


def mask(target: str) -> str:
    """A channel for display: email addresses as they are, URLs with every secret part replaced.

    ``workflows://prod.logic.azure.com/0a1b2c/SIGSECRET/`` → ``workflows://prod.logic.azure.com/0a…/****``.
    """
    value = target.strip()
    if value.lower().startswith(EMAIL_PREFIX):
        value = value[len(EMAIL_PREFIX) :]
    if "://" not in value:
        return value
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    shown = f"{parts.scheme}://{host}"
    if parts.username or parts.password:
        shown = f"{parts.scheme}://****@{host}"
    if segments:
        shown += f"/{segments[0][:2]}…" if len(segments) > 1 or len(segments[0]) > 2 else ""
        shown += "/****"
    return shown


def secrets_of(target: str) -> set[str]:
    """The substrings of a channel URL that must never be shown (path segments, credentials, query)."""
    if "://" not in target:
        return set()
    parts = urlsplit(target)
    found = {target}
    found.update(s for s in parts.path.split("/") if len(s) >= 4)
    for raw in (parts.username, parts.password):
        if raw and len(raw) >= 3:
            found.update({raw, unquote(raw)})
    for pair in parts.query.split("&"):
        value = pair.partition("=")[2]
        if len(value) >= 6:
            found.update({value, unquote(value)})
    return found


def scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "****")
    return text


class _ScrubFilter(logging.Filter):
    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage(), self.secrets)
        record.args = None
        return True


#: Loggers that see request URLs while apprise sends (urllib3 logs "POST /workflows/<id>/…&sig=<secret>").
#: Logger filters do not apply to records propagated from child loggers: every emitting logger is listed.
SCRUBBED_LOGGERS = (
    "apprise",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "requests",
)


@contextlib.contextmanager
def scrubbed_apprise_logs(secrets: set[str]) -> Iterator[None]:
    """Scrub records of apprise and its HTTP stack (they carry webhook URLs) before any handler sees them."""
    flt = _ScrubFilter({s for target in secrets for s in secrets_of(target)} | secrets)
    loggers = [logging.getLogger(name) for name in SCRUBBED_LOGGERS]
    for logger in loggers:
        logger.addFilter(flt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(flt)


# --- messages ------------------------------------------------------------------------------------


@dataclass
class Message:
    """One rendered notification: email parts and the Markdown body for apprise channels (alerts render
    only the forms their channel uses; the others are empty)."""

    subject: str
    text: str
    html: str
    markdown: str
    unsubscribe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class SendError(RuntimeError):
    """A send failed; the message is scrubbed of secrets."""


# --- email -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool  # smtps://
    timeout: float = 20.0

    @property
    def secrets(self) -> set[str]:
        return {self.password} if self.password else set()


def smtp_config() -> SmtpConfig:
    """Parse ``TENDERWATCH_SMTP_URL``; errors never echo the URL (it holds the password)."""
    secret = get_settings().smtp_url
    if secret is None or not secret.get_secret_value().strip():
        raise SendError("email is not configured: set TENDERWATCH_SMTP_URL (smtp://user:pass@host:587)")
    parts = urlsplit(secret.get_secret_value().strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SendError("TENDERWATCH_SMTP_URL must look like smtp://user:pass@host:587 or smtps://…")
    implicit = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit else 587)
    except ValueError:
        raise SendError("TENDERWATCH_SMTP_URL has an invalid port") from None
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
    )


def apprise_mailto_url(to: str) -> str:
    """The equivalent apprise ``mailto(s)://`` URL for ``to`` (for operators who prefer apprise for mail)."""
    from urllib.parse import quote

    cfg = smtp_config()
    scheme = "mailtos" if cfg.implicit_tls else "mailto"
    auth = ""
    if cfg.username:
        auth = (
            quote(cfg.username, safe="") + (":" + quote(cfg.password, safe="") if cfg.password else "") + "@"
        )
    sender = parseaddr(get_settings().mail_from)[1]
    return f"{scheme}://{auth}{cfg.host}:{cfg.port}?from={quote(sender)}&to={quote(to)}"


class Mailer:
    """One SMTP connection for a whole dispatch (every batch), opened lazily and re-opened when dropped.

    A send on a connection the server has closed (idle timeout, restart) or is closing (``421``, e.g. a
    per-connection message limit) is retried once on a fresh connection: the server did not take the
    message, so this cannot duplicate it. When the relay cannot be reached at all, the rest of the
    dispatch fails fast with the same reason instead of waiting for one connect timeout per message
    (the deliveries back off and retry later). ``connections`` counts the connections opened.
    """

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None
        self._cfg: SmtpConfig | None = None
        self._unreachable: str | None = None
        self.connections = 0

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.quit()
            self._smtp = None

    def _drop(self) -> None:
        """Forget a connection the server closed (no QUIT: it would fail or wait for a timeout)."""
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.close()
            self._smtp = None

    def _connect(self, cfg: SmtpConfig) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        try:
            if cfg.implicit_tls:
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=_tls())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except (OSError, smtplib.SMTPConnectError) as exc:
            self._unreachable = scrub(f"SMTP {cfg.host}:{cfg.port}: {_describe(exc)}", cfg.secrets)
            raise SendError(self._unreachable) from None
        self.connections += 1
        if not cfg.implicit_tls:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=_tls())
                smtp.ehlo()
        if cfg.username:
            smtp.login(cfg.username, cfg.password or "")
        return smtp

    def send(self, mail: WireMail) -> None:
        """Send one prepared message; :class:`SendError` (scrubbed) when it was not accepted."""
        if self._unreachable:
            raise SendError(self._unreachable)
        cfg = self._cfg = self._cfg or smtp_config()
        try:
            for attempt in (1, 2):
                if self._smtp is None:
                    self._smtp = self._connect(cfg)
                try:
                    self._smtp.sendmail(mail.sender, [mail.to], mail.data)
                    return
                except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
                    if attempt == 2 or not _connection_lost(exc):
                        raise
                    self._drop()
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise SendError(scrub(f"SMTP {cfg.host}:{cfg.port}: {_describe(exc)}", cfg.secrets)) from None


def _connection_lost(exc: smtplib.SMTPException) -> bool:
    """The server dropped the connection or is closing it (421): the message was not taken."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421


def _tls() -> ssl.SSLContext:
    """Built only when TLS is used: loading the CA store costs milliseconds a plain relay never needs."""
    return ssl.create_default_context()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"{exc.smtp_code} {detail}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + ", ".join(exc.recipients)
    return str(exc) or type(exc).__name__


class _WirePolicy(Compat32):
    """compat32 (headers kept as strings: no header-registry parse and refold, which was a quarter of the
    dispatcher's CPU) that folds only what must be: an ASCII header stays on one line (a long unsubscribe
    URL is not pushed to a continuation line), a non-ASCII one becomes folded RFC 2047 UTF-8 words."""

    def fold(self, name: str, value: Any) -> str:
        if _one_line(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if _one_line(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


def _one_line(name: str, value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and len(name) + len(value) + 2 <= 998  # RFC 5322


#: The wire form: CRLF line ends; bodies are quoted-printable, so 7-bit clean for any relay.
WIRE_POLICY = _WirePolicy(linesep="\r\n")


@dataclass(frozen=True)
class WireMail:
    """A message ready for SMTP: envelope sender, recipient and the bytes of the message."""

    sender: str
    to: str
    data: bytes


def email_message(to: str, message: Message) -> WireMail:
    """multipart/alternative (text + HTML, UTF-8 quoted-printable) with RFC 2369/8058 unsubscribe headers."""
    settings = get_settings()
    # "=_" never occurs in quoted-printable text, so this boundary cannot collide with a part and the
    # generator's per-message regex search for a free boundary is not needed
    mail = MIMEMultipart("alternative", boundary=f"=_tw{uuid.uuid4().hex}", policy=WIRE_POLICY)
    name, sender = parseaddr(settings.mail_from)
    mail["From"] = formataddr((name, sender), charset="utf-8") if sender else _header(settings.mail_from)
    mail["To"] = to
    mail["Subject"] = _header(message.subject)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"
    if message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for key, value in message.headers.items():
        mail[key] = _header(value)
    mail.attach(_text_part(message.text, "plain"))
    mail.attach(_text_part(message.html, "html"))
    return WireMail(sender or settings.mail_from, to, mail.as_bytes(policy=WIRE_POLICY))


def _header(value: str) -> str:
    """A header value on one logical line (no CR/LF header injection); :class:`_WirePolicy` encodes it."""
    return " ".join(value.splitlines())


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    """UTF-8 quoted-printable (binascii's C encoder), readable and 7-bit safe for any relay."""
    part = MIMENonMultipart("text", subtype, charset="utf-8", policy=WIRE_POLICY)
    del part["MIME-Version"]
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(quopri.encodestring(body.encode("utf-8")).decode("ascii"))
    return part


# --- apprise -------------------------------------------------------------------------------------


def send_apprise(url: str, message: Message) -> None:
    """Send through apprise; raise :class:`SendError` with apprise's (scrubbed) reason on failure."""
    import apprise

    secrets = secrets_of(url)
    with scrubbed_apprise_logs({url}), apprise.LogCapture(level=logging.WARNING) as captured:
        sender = apprise.Apprise()
        if not sender.add(url):
            raise SendError(f"apprise cannot load {mask(url)}")
        result = sender.notify(
            body=message.markdown, title=message.subject, body_format=apprise.NotifyFormat.MARKDOWN
        )
        logs = captured.getvalue() if hasattr(captured, "getvalue") else ""
    if not result:
        reason = " | ".join(_log_lines(logs)) or "apprise reported a failure"
        raise SendError(scrub(f"{mask(url)}: {reason}", secrets))


def _log_lines(logs: str) -> list[str]:
    lines = []
    for line in logs.splitlines():
        _, _, text = line.partition(" - WARNING - ")
        if not text:
            _, _, text = line.partition(" - ERROR - ")
        if text:
            lines.append(text.strip())
    return lines[-3:]


def send_to_channel(channel: Channel, message: Message, mailer: Mailer | None = None) -> None:
    """Deliver ``message`` to one channel or raise :class:`SendError` (scrubbed)."""
    if channel.kind == "email":
        if mailer is None:
            with Mailer() as own:
                own.send(email_message(channel.target, message))
        else:
            mailer.send(email_message(channel.target, message))
        return
    send_apprise(channel.target, message)


def send_test(channel: Channel) -> tuple[bool, str | None]:
    """Send a test message to ``channel``: ``(True, None)`` or ``(False, scrubbed error)``."""
    from tenderwatch.alerts.render import render_test

    try:
        send_to_channel(channel, render_test(channel))
    except SendError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, scrub(f"{type(exc).__name__}: {exc}", secrets_of(channel.target))
    return True, None
