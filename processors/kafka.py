"""Kafka client settings, read once from Settings and handed to Faust (the worker) and to every aiokafka client
(the sink's consumer, publish, feed, replay): bootstrap servers, TLS and SASL, producer limits, group timeouts.

The password comes from SCIQAG_KAFKA_SASL_PASSWORD or the file named by SCIQAG_KAFKA_SASL_PASSWORD_FILE
(see settings.py); nothing here logs it, and Faust's credentials print only the user name.
"""

from __future__ import annotations

import ssl
from typing import Any

from .errors import KafkaAuthError
from .settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the largest record batch a producer sends (records are checked against it)
# the largest key + value a stage sends: the request limit less room for the batch and record headers
MAX_RECORD_BYTES = MAX_REQUEST_BYTES - 64 * 1024
COMPRESSION = "gzip"
EMBEDDED_SESSION_TIMEOUT_S = 6.0  # one member on a loopback broker: Kafka-sized timeouts make a group join take ~30 s
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _protocol(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise KafkaAuthError(f"SCIQAG_KAFKA_SECURITY_PROTOCOL is {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_mechanism.upper() not in SASL_MECHANISMS:
            raise KafkaAuthError(
                f"SCIQAG_KAFKA_SASL_MECHANISM is {settings.kafka_sasl_mechanism!r}; "
                f"choose one of {', '.join(SASL_MECHANISMS)}"
            )
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise KafkaAuthError(
                f"{protocol} needs SCIQAG_KAFKA_SASL_USERNAME and SCIQAG_KAFKA_SASL_PASSWORD "
                "(or SCIQAG_KAFKA_SASL_PASSWORD_FILE)"
            )
    if settings.embedded_broker and protocol != "PLAINTEXT":
        raise KafkaAuthError(
            f"{protocol} is set but no broker is: the embedded broker speaks PLAINTEXT only; set SCIQAG_BROKER_URL"
        )
    return protocol


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context (system CAs, or the given CA file; a client certificate when given) for SSL protocols."""
    if not _protocol(settings).endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaAuthError(f"cannot load the Kafka TLS files: {exc}") from exc
    return context


def faust_credentials(settings: Settings):
    """`broker_credentials` for faust.App; None for PLAINTEXT."""
    import faust

    protocol = _protocol(settings)
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism.upper(),
        )
    return None


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer."""
    protocol = _protocol(settings)
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL"):
        kwargs.update(
            sasl_mechanism=settings.kafka_sasl_mechanism.upper(),
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return kwargs


def bootstrap_servers(broker_url: str) -> str:
    """Faust style `kafka://h1:9092;h2:9092` -> aiokafka style `h1:9092,h2:9092`."""
    hosts = [h.split("://", 1)[-1] for h in broker_url.replace(",", ";").split(";") if h.strip()]
    return ",".join(hosts)


def producer_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for an AIOKafkaProducer that writes project records (acks from every replica)."""
    return dict(
        compression_type=COMPRESSION, acks="all", max_request_size=MAX_REQUEST_BYTES, **aiokafka_security(settings)
    )


def group_timeouts(settings: Settings) -> tuple[float, float] | None:
    """(session timeout, heartbeat interval) in seconds for consumer groups, or None for the client defaults.

    How long the group waits for a member that stopped heartbeating before its partitions move: the setting, else
    EMBEDDED_SESSION_TIMEOUT_S on the embedded broker, else the client's own default."""
    session_s = settings.kafka_session_timeout_s or (EMBEDDED_SESSION_TIMEOUT_S if settings.embedded_broker else 0)
    if not session_s:
        return None
    return session_s, max(0.5, session_s / 6)
