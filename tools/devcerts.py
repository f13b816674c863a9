"""Makes a development CA and certificates for trying mutual TLS locally.

Usage: python -m tools.devcerts OUT_DIR [CLIENT_NAME ...]

Writes ca.pem, server.pem/server-key.pem (for localhost and 127.0.0.1) and
one <name>.pem/<name>-key.pem per client (default: gateway, worker,
insurance-office), plus clients.json mapping them to identities. Never use
these outside development.
"""

import datetime
import ipaddress
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_FOR = datetime.timedelta(days=365)
DEFAULT_CLIENTS = ["gateway", "worker", "insurance-office"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
    )


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make(
    folder: Path, clients: list[str], ca_name: str = "Cloud Ark development CA"
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for stem in ["server", *clients]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(stem, ca_name, key.public_key())
        if stem == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName(names), critical=False
            )
        _write(folder, stem, builder.sign(ca_key, hashes.SHA256()), key)
    mapping = {
        name: {"role": "system", "methods": ["*"], "delegates": True}
        if name in ("gateway", "worker")
        else {"role": "system", "methods": ["/cloudark.grids.v1.GridsService/GetArea"]}
        for name in clients
    }
    (folder / "clients.json").write_text(json.dumps(mapping, indent=2) + "\n")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    make(Path(sys.argv[1]), sys.argv[2:] or DEFAULT_CLIENTS)


if __name__ == "__main__":
    main()
