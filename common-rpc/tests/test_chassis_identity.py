"""Gateway-signed identity: keys on disk, sign/verify, and every way a token can be wrong."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from chassis_fixtures import *  # noqa: F403 (pytest finds fixtures by module name)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from common_rpc import RequestContext, Unauthorized
from common_rpc.chassis.identity import (
    AUDIENCE,
    ISSUER,
    IdentitySigner,
    IdentityVerifier,
    generate_keypair,
)

CTX = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member", "reader"}))


def test_keypair_files(tmp_path: Path) -> None:
    priv, pub = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in priv.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    # A second call keeps the key (replicas share it) and restores a missing public half.
    before = priv.read_bytes()
    pub.unlink()
    assert generate_keypair(tmp_path / "keys") == (priv, pub)
    assert priv.read_bytes() == before and pub.exists()
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["identity.key", "identity.pub"]


def test_sign_and_verify(signer: IdentitySigner, verifier: IdentityVerifier) -> None:
    token = signer.sign(CTX)
    ctx = verifier.verify(token)
    assert ctx == CTX
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 300
    assert claims["roles"] == ["member", "reader"]


def test_tampered_token(signer: IdentitySigner, verifier: IdentityVerifier) -> None:
    header, payload, sig = signer.sign(CTX).split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"p1"', b'"p2"')
    ).decode()
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{forged}.{sig}")
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{payload}.{sig[:-4]}AAAA")


def test_expired_token(signer: IdentitySigner, verifier: IdentityVerifier) -> None:
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(signer.sign(CTX, ttl_s=-60))


def test_wrong_key(tmp_path: Path, verifier: IdentityVerifier) -> None:
    other_priv, _ = generate_keypair(tmp_path / "other")
    with pytest.raises(Unauthorized):
        verifier.verify(IdentitySigner.from_file(other_priv).sign(CTX))


def test_wrong_audience_issuer_algorithm(keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    check = IdentityVerifier.from_file(pub)
    with pytest.raises(Unauthorized):
        check.verify(IdentitySigner(priv.read_bytes(), audience="someone-else").sign(CTX))
    with pytest.raises(Unauthorized):
        check.verify(IdentitySigner(priv.read_bytes(), issuer="not-the-gateway").sign(CTX))
    now = int(time.time())
    claims = {"iat": now, "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE, "project_id": "p1"}
    with pytest.raises(Unauthorized):
        check.verify(jwt.encode(claims, "a-shared-secret-long-enough-for-hs256", algorithm="HS256"))
    with pytest.raises(Unauthorized):
        check.verify(jwt.encode(claims, None, algorithm="none"))


def test_missing_claims_and_bad_types(keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    key = serialization.load_pem_private_key(priv.read_bytes(), None)
    check = IdentityVerifier.from_file(pub)
    now = int(time.time())
    base = {"iat": now, "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}
    with pytest.raises(Unauthorized):
        check.verify(jwt.encode({"iss": ISSUER, "aud": AUDIENCE}, key, algorithm="EdDSA"))
    with pytest.raises(Unauthorized):
        check.verify(jwt.encode({**base, "roles": "admin"}, key, algorithm="EdDSA"))
    with pytest.raises(Unauthorized):
        check.verify(jwt.encode({**base, "project_id": 7}, key, algorithm="EdDSA"))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "é.é.é"])
def test_garbage(verifier: IdentityVerifier, token: str) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_keys_must_be_ed25519() -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError):
        IdentitySigner(pem)
    pub = rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError):
        IdentityVerifier(pub)
    assert Ed25519PrivateKey.generate()  # the supported kind


def test_cache_keeps_expiry(keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    check = IdentityVerifier.from_file(pub)
    check.leeway_s = 0
    token = IdentitySigner.from_file(priv).sign(CTX, ttl_s=1)
    assert check.verify(token) is check.verify(token)
    time.sleep(2.1)
    with pytest.raises(Unauthorized, match="expired"):
        check.verify(token)


def test_cache_is_bounded(signer: IdentitySigner, keypair: tuple[Path, Path]) -> None:
    check = IdentityVerifier(keypair[1].read_bytes(), cache_size=3)
    for i in range(10):
        check.verify(signer.sign(CTX.model_copy(update={"request_id": f"r{i}"})))
    assert len(check._cache) == 3


def test_verification_is_fast(signer: IdentitySigner, verifier: IdentityVerifier) -> None:
    tokens = [signer.sign(CTX.model_copy(update={"request_id": f"r{i}"})) for i in range(200)]
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    # Under a millisecond each even uncached: it sits on every request.
    assert (time.perf_counter() - started) / len(tokens) < 0.001
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    assert (time.perf_counter() - started) / len(tokens) < 0.00005
