"""AlerterHook: the one place that reads an Airflow connection and turns it into a configured alerter.

Existing connections work unchanged: an ``smtp`` connection becomes the ``smtp_email`` flavor, a
``slack`` one the ``slack`` flavor, and so on (each flavor's ``CONN_TYPES``, gathered by
``registry.conn_type_flavors()``). Our own ``alerter`` type names any flavor, custom ones included,
in its extra ``flavor``: a flavor name, or a class path ``package.module:Class``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from pydantic import BaseModel, SecretStr

from airflow_alerter.alerters.base import BaseAlerter, ConnectionFields
from airflow_alerter.exceptions import AlerterConfigError
from airflow_alerter.registry import conn_type_flavors, get_flavor


def _strip_provider_prefix(extra: Mapping[str, Any], conn_type: str) -> dict[str, Any]:
    """Older Airflow UIs saved extras as ``extra__<conn_type>__<name>``; accept both spellings."""
    prefix = f"extra__{conn_type}__"
    plain = {key: value for key, value in extra.items() if not key.startswith(prefix)}
    prefixed = {key[len(prefix):]: value for key, value in extra.items() if key.startswith(prefix)}
    return {**prefixed, **plain}


def _extra_object(conn_id: str, raw: Any) -> dict[str, Any]:
    """The connection's extra as a JSON object, or an error naming the field (never echoing it: it may hold secrets)."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as err:
        where = f" ({err.msg} at line {err.lineno} column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise AlerterConfigError(f"Connection {conn_id!r}: extra is not valid JSON{where}") from None
    if not isinstance(value, dict):
        raise AlerterConfigError(f"Connection {conn_id!r}: extra must be a JSON object, not a {type(value).__name__}")
    return value


def _mask_secrets(config: BaseModel) -> None:
    """Register every secret value with Airflow's masker, so task logs show *** for it.

    Secrets may sit inside containers (the webhook flavor's ``headers`` is a dict of SecretStr), so
    the walk goes into dicts, lists and nested models, not just the top-level fields.
    """
    from airflow.sdk.log import mask_secret

    for secret in _secret_values(config):
        mask_secret(secret)


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for _, field in value:
            yield from _secret_values(field)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _secret_values(item)


def _reject_unknown_extras(conn: ConnectionFields, flavor: type[BaseAlerter]) -> None:
    """On our own ``alerter`` connections an extra that no field reads is a typo: name it, for every flavor.

    Connections of other types (``smtp``, ``slack``, ``discord``…) may carry their provider's own
    extras, which are left alone so existing connections keep working; so is a flavor whose config
    keeps every key (``extra="allow"``).
    """
    if conn.conn_type != AlerterHook.conn_type or flavor.Config.model_config.get("extra") == "allow":
        return
    known = {*flavor.Config.model_fields, *flavor.CONNECTION_EXTRAS}
    unknown = sorted(set(conn.extra) - known - {"flavor"})
    if unknown:
        raise AlerterConfigError(
            f"extra: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
        )


class AlerterHook(BaseHook):
    """Build the alerter a connection describes.

    :param alerter_conn_id: an ``alerter`` connection, or an ``smtp``/``slack``/``slackwebhook``/
        ``discord`` connection used as it is.
    :param settings: per-task settings of the flavor (e.g. ``{"recipient_email": [...]}``), which
        override the connection's defaults.
    """

    conn_name_attr = "alerter_conn_id"
    default_conn_name = "alerter_default"
    conn_type = "alerter"
    hook_name = "Alerter"

    def __init__(
        self, alerter_conn_id: str = default_conn_name, settings: Mapping[str, Any] | BaseModel | None = None
    ) -> None:
        super().__init__()
        self.alerter_conn_id = alerter_conn_id
        self.settings = settings

    @cached_property
    def connection_fields(self) -> ConnectionFields:
        conn = self.get_connection(self.alerter_conn_id)
        conn_type = conn.conn_type or ""
        return ConnectionFields(
            conn_id=self.alerter_conn_id,
            conn_type=conn_type,
            host=conn.host or None,
            port=conn.port,
            login=conn.login or None,
            password=conn.password or None,
            schema=conn.schema or None,
            extra=_strip_provider_prefix(_extra_object(self.alerter_conn_id, conn.extra), conn_type),
        )

    @cached_property
    def flavor(self) -> type[BaseAlerter]:
        fields = self.connection_fields
        if fields.conn_type == self.conn_type:
            name = fields.extra.get("flavor")
        else:
            name = conn_type_flavors().get(fields.conn_type)
        if not name:
            raise AlerterConfigError(
                f"Connection {self.alerter_conn_id!r} of type {fields.conn_type!r} cannot be used as an alerter: "
                f"use one of the types {', '.join(sorted(conn_type_flavors()))}, or type 'alerter' with an extra "
                f"'flavor'"
            )
        try:
            return get_flavor(str(name))
        except AlerterConfigError as err:  # FlavorError: unknown, or its class no longer loads
            err.conn_id = err.conn_id or self.alerter_conn_id
            raise err from None  # the same error, named after the connection; no chained input shown

    def get_alerter(self) -> BaseAlerter:
        """A configured alerter; config errors name the connection and the field, never a secret."""
        flavor = self.flavor
        try:
            _reject_unknown_extras(self.connection_fields, flavor)
            data = flavor.config_from_connection(self.connection_fields)
            alerter = flavor(data, self.settings)
        except AlerterConfigError as err:
            raise AlerterConfigError(f"Connection {self.alerter_conn_id!r}: {err}") from None
        alerter.connection_id = self.alerter_conn_id
        _mask_secrets(alerter.config)
        return alerter

    def get_conn(self) -> BaseAlerter:
        return self.get_alerter()

    def test_connection(self) -> tuple[bool, str]:
        """What ``airflow connections test`` and the UI's Test button call: the flavor's live check."""
        try:
            return self.get_alerter().test_connection()
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form on Airflow 3.0/3.1 (3.2+ reads the same table from the provider info)."""
        from airflow_alerter.hooks.ui import ui_field_behaviour

        return ui_field_behaviour()
