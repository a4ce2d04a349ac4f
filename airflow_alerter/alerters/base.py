"""The alerter contract every flavor implements; free of Airflow so flavors can be used anywhere.

A custom flavor is three steps, as in ZenML: subclass :class:`BaseAlerter`, set ``FLAVOR``,
implement ``post()``. Built-in flavors implement the protected hook ``_deliver()`` instead, which
raises with a reason rather than returning False, so the operator can report *why* a message was not
delivered; a flavor that can gate an ask sensor implements ``_send_question()`` and
``_check_answer()`` too (see :class:`BaseAlerter` for why a blocking ``ask()`` alone cannot).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationError
from typing_extensions import TypeVar

from airflow_alerter.exceptions import (
    AlerterConfigError,
    AlerterDeliveryError,
    AlerterError,
    AskNotSupported,
    FlavorRegistrationError,
)
from airflow_alerter.models import (
    AlerterMessage,
    AskResult,
    AskStatus,
    BaseAlerterParameters,
    QuestionHandle,
)

#: the errors lived here before ``airflow_alerter.exceptions``; these imports keep working
__all__ = [
    "AlerterConfigError",
    "AlerterDeliveryError",
    "AlerterError",
    "AnyConfig",
    "AskNotSupported",
    "BaseAlerter",
    "ConnectionFields",
    "NoSettings",
    "SecretWebUrl",
    "config_error",
    "validate_model",
]

log = logging.getLogger(__name__)

#: connections (or flavors) already warned about cleartext in this process: one warning each
_WARNED_CLEARTEXT: set[str] = set()


class AnyConfig(BaseModel):
    """Config of a custom flavor that declares no model of its own: every key is kept."""

    model_config = ConfigDict(extra="allow")


class NoSettings(BaseModel):
    """Per-task settings of a flavor that has none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ConnectionFields:
    """An Airflow connection reduced to plain values, so the core never imports Airflow."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _web_url(value: SecretStr) -> SecretStr:
    """A webhook URL that is not http(s) would only fail at send time, far from the connection that holds it."""
    if not value.get_secret_value().startswith(("https://", "http://")):
        raise ValueError("must be an http(s):// URL")
    return value


#: a secret http(s) URL, such as a chat's incoming webhook
SecretWebUrl = Annotated[SecretStr, AfterValidator(_web_url)]


def config_error(err: ValidationError, where: str) -> AlerterConfigError:
    """Turn a pydantic error into one naming each bad field, without echoing the input (it may be a secret)."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}" for item in err.errors()
    )
    return AlerterConfigError(f"Invalid {where}: {problems}")


def validate_model(model: type[BaseModel], data: Any, where: str) -> Any:
    """``model.model_validate`` with errors that name the field and never contain the input."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise config_error(err, where) from None


#: a flavor's types: connection config, per-task settings, per-call parameters. The defaults are ``Any``
#: so a ZenML-style flavor that subclasses ``BaseAlerter`` unparameterised reads ``self.config.x`` freely.
ConfigT = TypeVar("ConfigT", bound=BaseModel, default=Any)
SettingsT = TypeVar("SettingsT", bound=BaseModel, default=Any)
ParamsT = TypeVar("ParamsT", bound=BaseAlerterParameters, default=Any)

#: the hooks (public or protected) a flavor must define to gate a sensor: post a question, then poll it
_ASKING_HOOKS = (("send_question", "_send_question"), ("check_answer", "_check_answer"))
#: what a flavor with only a blocking ask() lacks, said when the sensor (or anything polling) uses it
ASK_HOW_TO = ("It implements only a blocking ask(), which cannot be polled: to gate an AlerterAskSensor, "
              "implement _send_question() and _check_answer().")


class BaseAlerter(Generic[ConfigT, SettingsT, ParamsT]):
    """Post messages and ask yes/no questions on one channel.

    ``Config`` holds what a connection provides (servers, secrets, defaults), ``Settings`` what a
    task may override, ``Parameters`` what one call may override. Precedence, as in ZenML:
    parameters > settings > config.

    The public methods are template methods: each validates its input once (the message through
    :meth:`AlerterMessage.coerce`, the parameters through :meth:`coerce_params`) and calls a
    protected hook (``_deliver``, ``_send_question``, ``_check_answer``, ``_acheck_answer``,
    ``_find_question``, ``_conclude``) that receives validated models. Built-in flavors implement the
    hooks. A ZenML-style flavor may still override ``post()`` (and ``ask()``) instead: ``deliver()``
    then goes through its ``post()``.

    :attr:`CAN_ASK` says whether the flavor can gate an ask sensor, which posts a question and
    polls for its answer. A flavor that leaves it unset gets True when it defines both a question
    hook and an answer check (public or protected), False otherwise. A flavor with only a blocking
    ``ask()`` therefore reports False: the sensor cannot poll it, and its ``send_question()`` raises
    :class:`AskNotSupported` saying what to implement. Its ``ask()`` still works where blocking is
    fine (``airflow-alerter ask``).
    """

    FLAVOR: ClassVar[str]
    #: whether the sensor can ask through this flavor; derived in ``__init_subclass__`` when not set
    CAN_ASK: ClassVar[bool] = False
    #: whether a class (this one or a base) set CAN_ASK itself: a stated value is inherited, a derived one is not
    _CAN_ASK_STATED: ClassVar[bool] = False
    #: Airflow connection types this flavor serves as they are (``("slack",)``); any flavor serves ``alerter``
    CONN_TYPES: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[BaseModel]] = AnyConfig
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Parameters: ClassVar[type[BaseAlerterParameters]] = BaseAlerterParameters
    DEFAULT_POLL_INTERVAL: ClassVar[float] = 30.0
    #: extra keys :meth:`config_from_connection` reads besides the ``Config`` fields (a provider's own
    #: names, such as Discord's ``webhook_endpoint``); on an ``alerter`` connection any other key is a typo
    CONNECTION_EXTRAS: ClassVar[frozenset[str]] = frozenset()
    #: the Airflow connection this alerter was built from (AlerterHook sets it), so messages can name it
    connection_id: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "FLAVOR" in cls.__dict__ and not cls.defines("post", "deliver", "_deliver"):
            raise FlavorRegistrationError(
                f"Alerter flavor {cls.FLAVOR!r} ({cls.__qualname__}) must implement post() or _deliver()"
            )
        if "CAN_ASK" in cls.__dict__:
            cls._CAN_ASK_STATED = True
        elif not cls._CAN_ASK_STATED:
            cls.CAN_ASK = all(cls.defines(*hooks) for hooks in _ASKING_HOOKS)

    @classmethod
    def defines(cls, *names: str) -> bool:
        """Whether the flavor itself (not BaseAlerter) defines one of ``names``: read once, when a class is made."""
        own = cls.__mro__[: cls.__mro__.index(BaseAlerter)]
        return any(name in vars(klass) for klass in own for name in names)

    def __init__(self, config: BaseModel | Mapping[str, Any] | None = None, settings: Any = None) -> None:
        self.config: ConfigT = validate_model(self.Config, config, f"{self.FLAVOR} alerter config")
        self.settings: SettingsT = validate_model(self.Settings, settings, f"{self.FLAVOR} alerter settings")

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """Map an Airflow connection onto ``Config`` fields; flavors with their own conn types override this.

        The default reads the extras, then fills ``host``/``port``/``login``/``password``/``schema``
        into fields of the same name when the model declares them.
        """
        data: dict[str, Any] = {key: value for key, value in conn.extra.items() if key != "flavor"}
        declared = set(getattr(cls.Config, "model_fields", {}))
        allows_extra = cls.Config.model_config.get("extra") == "allow"
        for name in ("host", "port", "login", "password", "schema"):
            value = getattr(conn, name)
            if value not in (None, "") and (name in declared or allows_extra):
                data.setdefault(name, value)
        return data

    def described(self) -> str:
        """How messages name this alerter: its connection when it has one, else its flavor."""
        return f"connection {self.connection_id!r}" if self.connection_id else f"the {self.FLAVOR} alerter"

    def warn_cleartext(self, what: str, fix: str) -> None:
        """One warning per connection (or flavor) and process that ``what`` travels unencrypted; never a secret.

        ``what`` says which secret or message crosses the network in clear, ``fix`` what to change;
        neither may hold the URL or the credential itself.
        """
        key = self.connection_id or f"flavor:{self.FLAVOR}"
        if key in _WARNED_CLEARTEXT:
            return
        _WARNED_CLEARTEXT.add(key)
        log.warning("%s sends %s unencrypted: anyone on the network path can read it; %s", self.described(),
                    what, fix)

    def warn_if_http(self, url: str | None, what: str) -> None:
        """:meth:`warn_cleartext` for an ``http://`` URL (``what``: the secret it carries, e.g. "the webhook URL")."""
        if url is not None and url.lower().startswith("http://"):
            self.warn_cleartext(f"{what} over http://", "use an https:// URL")

    @classmethod
    def can_ask(cls) -> bool:
        """Whether the ask sensor can put a question through this flavor: :attr:`CAN_ASK`."""
        return cls.CAN_ASK

    def test_connection(self) -> tuple[bool, str]:
        """Check, without sending anything, that the channel takes these credentials: ``(ok, reason)``.

        ``airflow connections test`` (through ``AlerterHook.test_connection``) and ``airflow-alerter
        test-connection`` call this. Flavors override it with one cheap authenticated call (SMTP:
        connect, login, NOOP; Slack: ``auth.test``; Discord: ``users/@me``); the default can only vouch
        for the configuration, which was validated when the alerter was built.
        """
        return True, f"the {self.FLAVOR} configuration is valid (this flavor has no live check)"

    def resolve(self, name: str, params: BaseModel | None = None) -> Any:
        """The value of ``name`` by precedence: per-call params > task settings > connection config."""
        for source in (params, self.settings, self.config):
            value = getattr(source, name, None)
            if value is not None:
                return value
        return None

    def coerce_params(self, params: BaseAlerterParameters | Mapping[str, Any] | None) -> ParamsT | None:
        """Accept the flavor's Parameters model, a plain dict, or None."""
        if params is None:
            return None
        validated: ParamsT = validate_model(self.Parameters, params, f"{self.FLAVOR} alerter parameters")
        return validated

    # --- posting ---------------------------------------------------------------------------------

    def post(self, message: str | AlerterMessage, params: BaseAlerterParameters | None = None) -> bool:
        """Send ``message``; True when delivered, False (with a logged reason) when not."""
        try:
            self.deliver(message, params)
        except AlerterDeliveryError as err:
            log.warning("%s alert was not delivered: %s", self.FLAVOR, err)
            return False
        return True

    def deliver(self, message: str | AlerterMessage, params: BaseAlerterParameters | None = None) -> None:
        """Send ``message`` or raise :class:`AlerterDeliveryError` saying why."""
        self._deliver(AlerterMessage.coerce(message), self.coerce_params(params))

    def _deliver(self, message: AlerterMessage, params: ParamsT | None) -> None:
        """Send a validated message; the default serves ZenML-style flavors that implement ``post()`` alone."""
        if not self.defines("post"):
            # without this, post() and deliver() would call each other forever
            raise NotImplementedError(f"{type(self).__qualname__} implements neither _deliver() nor post()")
        if not self.post(message, params):
            raise AlerterDeliveryError(f"the {self.FLAVOR} alerter's post() returned False")

    # --- asking ----------------------------------------------------------------------------------

    def send_question(
        self, question: str | AlerterMessage, params: BaseAlerterParameters | None = None
    ) -> QuestionHandle:
        """Post ``question`` once and return a handle to find its answer later."""
        return self._send_question(AlerterMessage.coerce(question), self.coerce_params(params))

    def _send_question(self, question: AlerterMessage, params: ParamsT | None) -> QuestionHandle:
        raise self._cannot_ask()

    def _cannot_ask(self) -> AskNotSupported:
        """The error of a flavor that cannot gate a sensor; one with a blocking ask() is told what to add."""
        err = AskNotSupported(self.FLAVOR)
        if self.defines("ask"):
            err.add_hint(ASK_HOW_TO)
        return err

    def find_question(
        self, question_key: str, since: float, params: BaseAlerterParameters | None = None
    ) -> QuestionHandle | None:
        """The question posted with ``question_key`` no earlier than ``since`` (epoch s), if the channel can tell.

        Called when an earlier attempt stored the key but not the handle (its worker was killed in
        between). None means "not found, post it": flavors that cannot search return None, and
        flavors whose API drops duplicate posts by key (Discord) need not search at all.
        """
        return self._find_question(question_key, since, self.coerce_params(params))

    def _find_question(self, question_key: str, since: float, params: ParamsT | None) -> QuestionHandle | None:
        return None

    def check_answer(self, handle: QuestionHandle, params: BaseAlerterParameters | None = None) -> AskResult:
        """Look once (one API call where the channel allows) for a valid answer."""
        return self._check_answer(handle, self.coerce_params(params))

    def _check_answer(self, handle: QuestionHandle, params: ParamsT | None) -> AskResult:
        raise self._cannot_ask()

    async def acheck_answer(
        self, handle: QuestionHandle, params: BaseAlerterParameters | None = None
    ) -> AskResult:
        """Async :meth:`check_answer` for triggers; flavors with an async client override ``_acheck_answer``."""
        return await self._acheck_answer(handle, self.coerce_params(params))

    async def _acheck_answer(self, handle: QuestionHandle, params: ParamsT | None) -> AskResult:
        # the public check_answer, so a flavor that overrides it (not the hook) is polled too
        return await asyncio.to_thread(self.check_answer, handle, params)

    def conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        """Show the outcome next to the question (thread reply, edited question); best effort."""
        self._conclude(handle, result)

    def _conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        """Nothing to show by default: a channel without replies or edits keeps the question as it is."""

    def show_decision(self, handle: QuestionHandle, result: AskResult) -> None:
        """Mark the question itself with the decision (its buttons give way to the outcome); best effort.

        A responder calls this the moment a click is recorded, so nobody can click twice; the gate's
        :meth:`conclude` later adds the thread reply. Flavors with buttons implement ``_show_decision``.
        """
        self._show_decision(handle, result)

    def _show_decision(self, handle: QuestionHandle, result: AskResult) -> None:
        """Nothing by default: a channel without buttons has nothing to take away."""

    def question_link(self, handle: QuestionHandle) -> str | None:
        """A web link to the posted question, for pages that point people to it; None where there is none."""
        return self._question_link(handle)

    def _question_link(self, handle: QuestionHandle) -> str | None:
        """None by default: not every channel gives its messages a web address."""
        return None

    def ask(
        self,
        question: str | AlerterMessage,
        params: BaseAlerterParameters | None = None,
        *,
        timeout: float = 3600.0,
        poll_interval: float | None = None,
    ) -> bool:
        """Post ``question`` and block until it is answered or ``timeout`` seconds pass (ZenML parity)."""
        return self.ask_for_result(question, params, timeout=timeout, poll_interval=poll_interval).approved

    def ask_for_result(
        self,
        question: str | AlerterMessage,
        params: BaseAlerterParameters | None = None,
        *,
        timeout: float = 3600.0,
        poll_interval: float | None = None,
    ) -> AskResult:
        """Like :meth:`ask`, returning the whole :class:`AskResult` (who answered, when, what)."""
        from airflow_alerter.alerters.retry import wait_before_next_check

        question, call_params = AlerterMessage.coerce(question), self.coerce_params(params)
        interval = poll_interval if poll_interval is not None else self.DEFAULT_POLL_INTERVAL
        handle = self.send_question(question, call_params)
        deadline = time.monotonic() + timeout
        while not (result := self.check_answer(handle, call_params)).is_final:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result = AskResult(status=AskStatus.TIMED_OUT, reason=f"no answer within {timeout:g}s")
                break
            time.sleep(wait_before_next_check(interval, result.retry_after, remaining))
        self.conclude(handle, result)
        return result
