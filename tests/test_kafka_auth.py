"""Kafka TLS/SASL settings reach Faust and aiokafka unchanged, with clear errors, and the password stays out of logs."""

import logging
import os
import ssl
import subprocess

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from processors.errors import KafkaAuthError
from processors.kafka import aiokafka_security, faust_credentials
from processors.pipeline.app import build_app
from processors.settings import Settings

from .conftest import sciqag_exe

SECRET = "canary-Pa55-7f3e9c"


def _settings(tmp_path, **values) -> Settings:
    return Settings(data_dir=tmp_path, broker_url="kafka://broker.example:9093", **values)


def test_plaintext_by_default(tmp_path):
    settings = _settings(tmp_path)
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_reaches_faust_and_aiokafka_alike(tmp_path, monkeypatch, mechanism):
    password_file = tmp_path / "kafka-password"
    password_file.write_text(SECRET + "\n")
    monkeypatch.setenv("SCIQAG_KAFKA_SASL_PASSWORD_FILE", str(password_file))  # secrets from a file
    settings = _settings(
        tmp_path, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism, kafka_sasl_username="sciqag"
    )
    assert settings.kafka_sasl_password == SECRET and SECRET not in repr(settings)
    direct = aiokafka_security(settings)
    assert {k: v for k, v in direct.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "sciqag",
        "sasl_plain_password": SECRET,
    }
    assert isinstance(direct["ssl_context"], ssl.SSLContext)
    assert direct["ssl_context"].verify_mode == ssl.CERT_REQUIRED and direct["ssl_context"].check_hostname

    # what the worker's Faust app hands to aiokafka
    settings.agents = ["extractor"]
    app, _ = build_app(settings, settings.broker_url, None)
    via_faust = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    assert {k: v for k, v in via_faust.items() if k != "ssl_context"} == {
        k: v for k, v in direct.items() if k != "ssl_context"
    }
    assert SECRET not in repr(app.conf.broker_credentials)


def test_ssl_with_a_client_certificate_file_that_is_missing(tmp_path):
    settings = _settings(tmp_path, kafka_security_protocol="SSL", kafka_ssl_certfile=str(tmp_path / "nope.pem"))
    with pytest.raises(KafkaAuthError, match="cannot load the Kafka TLS files"):
        aiokafka_security(settings)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"kafka_security_protocol": "SASL_TLS"}, "choose one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"}, "needs SCIQAG_KAFKA_SASL_USERNAME"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
                "kafka_sasl_mechanism": "GSSAPI",
            },
            "SCIQAG_KAFKA_SASL_MECHANISM",
        ),
    ],
)
def test_settings_that_do_not_fit_together(tmp_path, values, message):
    with pytest.raises(KafkaAuthError, match=message):
        aiokafka_security(_settings(tmp_path, **values))


def test_the_embedded_broker_refuses_tls(tmp_path):
    with pytest.raises(KafkaAuthError, match="embedded broker speaks PLAINTEXT only"):
        aiokafka_security(Settings(data_dir=tmp_path, kafka_security_protocol="SSL"))


def test_publish_with_sasl_fails_clearly_and_does_not_print_the_password(tmp_path, free_port):
    """Against a port where no broker answers: the error names the broker, never the password (a debug-level log)."""
    paper = tmp_path / "a.pdf"
    paper.write_bytes(b"%PDF-1.4 not really")
    env = {
        "SCIQAG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SCIQAG_KAFKA_SASL_USERNAME": "sciqag",
        "SCIQAG_KAFKA_SASL_PASSWORD": SECRET,
        "SCIQAG_CLICKHOUSE_PASSWORD": SECRET + "-ch",
        "SCIQAG_LOG_LEVEL": "DEBUG",
    }
    proc = subprocess.run(
        [sciqag_exe(), "publish", "--broker", f"kafka://127.0.0.1:{free_port}", str(paper), "--log-level", "DEBUG"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert f"127.0.0.1:{free_port}" in output
    assert SECRET not in output


def test_secrets_are_not_logged_by_settings(tmp_path, caplog):
    settings = _settings(
        tmp_path,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="u",
        kafka_sasl_password=SECRET,
        clickhouse_password=SECRET + "-ch",
        llm_api_key=SECRET + "-llm",
        clickhouse_dsn=f"http://u:{SECRET}-dsn@ch.internal:8123/sciqag",
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sciqag").debug("settings: %s", settings)
    assert SECRET not in caplog.text and "kafka_sasl_username='u'" in caplog.text
    assert "clickhouse_dsn='http://u:***@ch.internal:8123/sciqag'" in caplog.text
