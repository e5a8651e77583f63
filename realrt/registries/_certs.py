"""A throw-away certificate authority for registries on loopback (made with ``cryptography``).

A private registry with logins must speak TLS: Basic credentials travel in
every request.  :class:`CertificateAuthority` makes a self-signed CA
(``ca.crt``, ``ca.key``) and issues server certificates for the hosts a
client dials (``127.0.0.1`` and ``localhost`` by default); a client trusts
the registry by trusting ``ca.crt`` alone (``httpx.Client(verify=ssl_ctx)``,
``skopeo --cert-dir``, Docker's ``certs.d``, Go's ``SSL_CERT_FILE``).

Keys are EC P-256 (fast to make, accepted by Go and OpenSSL).  Every private
key file is created with mode 0600 from its first byte and renamed into place,
so it is never readable by other users, not even while it is being written.
The certificates carry what strict verifiers (Go, Python's
``VERIFY_X509_STRICT``) insist on: critical BasicConstraints and KeyUsage,
subject and authority key identifiers, SubjectAltName and the ServerAuth EKU.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sim.errors import ConflictError, RegistryConfigError

__all__ = ["CertificateAuthority", "write_atomic", "CA_CERT_NAME", "CA_KEY_NAME", "SERVER_CERT_NAME", "SERVER_KEY_NAME"]

CA_CERT_NAME = "ca.crt"
CA_KEY_NAME = "ca.key"
SERVER_CERT_NAME = "server.crt"
SERVER_KEY_NAME = "server.key"

_CA_DAYS = 3650
_SERVER_DAYS = 365
# Certificates start a little in the past: a client whose clock lags must not see "not yet valid".
_BACKDATE = datetime.timedelta(minutes=5)
_DNS_NAME = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically (temporary name, fsync, rename) with exactly ``mode``.

    The temporary file is created with ``mode`` (O_EXCL), so a 0600 key is never
    readable by others while it is written; ``fchmod`` undoes a umask that
    removed owner bits."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """Each host as an IP or DNS SubjectAltName; a malformed one is a RegistryConfigError."""
    if isinstance(hosts, str) or not hosts:
        raise RegistryConfigError("a server certificate needs a non-empty sequence of host names or IPs")
    names: list[x509.GeneralName] = []
    for host in hosts:
        if not isinstance(host, str):
            raise RegistryConfigError(f"certificate host {host!r} is not a string")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _DNS_NAME.match(host):
                raise RegistryConfigError(f"certificate host {host!r} is neither an IP address nor a DNS name") from None
            names.append(x509.DNSName(host.lower()))
    return names


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA on disk: ``cert_file`` (PEM, public) and ``key_file`` (PEM PKCS#8, mode 0600)."""

    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, folder: str | os.PathLike[str], *, name: str = "layerlab test CA") -> CertificateAuthority:
        """Make a new self-signed CA in ``folder`` (created 0700 if missing) as ``ca.crt`` and ``ca.key``.

        The CA is valid for ten years, may sign only end-entity certificates
        (path length 0) and is named ``CN=<name>, O=layerlab``.  Raises
        :class:`~sim.errors.RegistryConfigError` for an empty name and
        :class:`~sim.errors.ConflictError` when ``folder`` already holds a CA
        (reopen it with :meth:`load`), both before anything is written."""
        if not isinstance(name, str) or not name.strip():
            raise RegistryConfigError("a CA name must be a non-empty string")
        where = Path(folder)
        cert_file, key_file = where / CA_CERT_NAME, where / CA_KEY_NAME
        if cert_file.exists() or key_file.exists():
            raise ConflictError(f"{where} already holds a CA; use CertificateAuthority.load()")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "layerlab")])
        now = datetime.datetime.now(datetime.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256())
        )
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The key first: a folder with a certificate but no key would look like a usable CA.
        write_atomic(key_file, _key_pem(key), mode=0o600)
        write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        return cls(cert_file, key_file)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> CertificateAuthority:
        """Reopen the CA :meth:`create` made in ``folder``.

        Raises :class:`~sim.errors.RegistryConfigError` when either file is
        missing or unreadable, the certificate is not a CA, or the key is not
        the certificate's."""
        where = Path(folder)
        ca = cls(where / CA_CERT_NAME, where / CA_KEY_NAME)
        cert, key = ca._open()
        if not _is_ca(cert):
            raise RegistryConfigError(f"{ca.cert_file} is not a CA certificate (BasicConstraints ca=False)")
        if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
                != key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo):
            raise RegistryConfigError(f"{ca.key_file} is not the key of {ca.cert_file}")
        return ca

    def _open(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise RegistryConfigError(f"cannot read the CA in {self.cert_file.parent}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise RegistryConfigError(f"{self.key_file} is not an EC key")
        return cert, key

    def issue(self, folder: str | os.PathLike[str], *,
              hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
        """Issue a server certificate for ``hosts`` into ``folder`` (created 0700 if missing).

        Returns ``(server.crt, server.key)``; an earlier pair there is replaced
        atomically.  The certificate (valid one year) names every host as a
        SubjectAltName (an IP address or a DNS name), allows ServerAuth only,
        and is signed by this CA; the key is mode 0600.  Raises
        :class:`~sim.errors.RegistryConfigError` for an empty or malformed host
        list or an unreadable CA, before anything is written."""
        names = _san(hosts)
        ca_cert, ca_key = self._open()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layerlab registry"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "layerlab")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + datetime.timedelta(days=_SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        where = Path(folder)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert_file, key_file = where / SERVER_CERT_NAME, where / SERVER_KEY_NAME
        write_atomic(key_file, _key_pem(key), mode=0o600)
        write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        return cert_file, key_file

    def verifies(self, cert_file: str | os.PathLike[str]) -> bool:
        """Whether this CA's key signed the certificate in ``cert_file`` (a quick self-check for tests)."""
        ca_cert, _ = self._open()
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
