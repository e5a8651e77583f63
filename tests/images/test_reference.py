"""Image references: distribution/reference's grammar, normalisation and error messages.

The tables hold every example of ``shared/reference/images-and-registries.md``
and the cases of distribution/reference's own tests (``reference_test.go``,
``normalize_test.go``).  When a ``docker`` client is installed, the invalid
inputs, and random strings, are also fed to ``docker pull`` with no daemon
reachable: Docker parses the reference before connecting, so its answer is
either the same error message or "Cannot connect", which means "valid".
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sim.errors import InvalidReferenceError
from sim.images.reference import (
    ERR_NAME_TOO_LONG,
    Reference,
    is_image_id,
    parse_reference,
    validate_tag,
)

HEX64 = "f" * 64
SHA = "sha256:" + HEX64
REPO_UPPER = "invalid reference format: repository name ({}) must be lowercase"

# input -> (domain, path, tag, digest, familiar)
VALID: dict[str, tuple[str, str, str | None, str | None, str]] = {
    # the reference doc's examples
    "ubuntu": ("docker.io", "library/ubuntu", "latest", None, "ubuntu:latest"),
    "localhost/foo": ("localhost", "foo", "latest", None, "localhost/foo:latest"),
    "Foo/bar": ("Foo", "bar", "latest", None, "Foo/bar:latest"),
    f"test:5000/repo:tag@{SHA}": ("test:5000", "repo", "tag", SHA, f"test:5000/repo:tag@{SHA}"),
    "[::1]:5000/repo": ("[::1]:5000", "repo", "latest", None, "[::1]:5000/repo:latest"),
    "lowercase:Uppercase": ("docker.io", "library/lowercase", "Uppercase", None, "lowercase:Uppercase"),
    "test.com:5000": ("docker.io", "library/test.com", "5000", None, "test.com:5000"),
    # normalisation
    "docker.io/ubuntu": ("docker.io", "library/ubuntu", "latest", None, "ubuntu:latest"),
    "index.docker.io/debian": ("docker.io", "library/debian", "latest", None, "debian:latest"),
    "index.docker.io/docker/docker": ("docker.io", "docker/docker", "latest", None, "docker/docker:latest"),
    "docker.io/library/debian:12": ("docker.io", "library/debian", "12", None, "debian:12"),
    "library/debian": ("docker.io", "library/debian", "latest", None, "debian:latest"),
    "docker/docker": ("docker.io", "docker/docker", "latest", None, "docker/docker:latest"),
    "docker.io/library/a/b": ("docker.io", "library/a/b", "latest", None, "library/a/b:latest"),
    "localhost/library/debian": ("localhost", "library/debian", "latest", None, "localhost/library/debian:latest"),
    "localhost:5000/foo/bar": ("localhost:5000", "foo/bar", "latest", None, "localhost:5000/foo/bar:latest"),
    "127.0.0.1:5000/debian": ("127.0.0.1:5000", "debian", "latest", None, "127.0.0.1:5000/debian:latest"),
    f"ubuntu@{SHA}": ("docker.io", "library/ubuntu", None, SHA, f"ubuntu@{SHA}"),
    # distribution/reference's test cases
    "sub-dom1.foo.com/bar/baz/quux": ("sub-dom1.foo.com", "bar/baz/quux", "latest", None, "sub-dom1.foo.com/bar/baz/quux:latest"),
    "b.gcr.io/test.example.com/my-app:test.example.com": (
        "b.gcr.io", "test.example.com/my-app", "test.example.com", None, "b.gcr.io/test.example.com/my-app:test.example.com",
    ),
    "xn--n3h.com/myimage:xn--n3h.com": ("xn--n3h.com", "myimage", "xn--n3h.com", None, "xn--n3h.com/myimage:xn--n3h.com"),
    "xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + "f" * 128: (
        "xn--7o8h.com", "myimage", "xn--7o8h.com", "sha512:" + "f" * 128, "xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + "f" * 128,
    ),
    "foo_bar.com:8080": ("docker.io", "library/foo_bar.com", "8080", None, "foo_bar.com:8080"),
    "foo/foo_bar.com:8080": ("docker.io", "foo/foo_bar.com", "8080", None, "foo/foo_bar.com:8080"),
    "192.168.1.1": ("docker.io", "library/192.168.1.1", "latest", None, "192.168.1.1:latest"),
    "192.168.1.1:5000": ("docker.io", "library/192.168.1.1", "5000", None, "192.168.1.1:5000"),
    "192.168.1.1/repo": ("192.168.1.1", "repo", "latest", None, "192.168.1.1/repo:latest"),
    "192.168.1.1:5000/repo:5000": ("192.168.1.1:5000", "repo", "5000", None, "192.168.1.1:5000/repo:5000"),
    "[2001:db8::1]/repo": ("[2001:db8::1]", "repo", "latest", None, "[2001:db8::1]/repo:latest"),
    "[2001:db8:1:2:3:4:5:6]/repo:tag": ("[2001:db8:1:2:3:4:5:6]", "repo", "tag", None, "[2001:db8:1:2:3:4:5:6]/repo:tag"),
    f"[2001:db8::1]:5000/repo:tag@{SHA}": ("[2001:db8::1]:5000", "repo", "tag", SHA, f"[2001:db8::1]:5000/repo:tag@{SHA}"),
    "a__b/c-----d.e_f:T_1.x-y": ("docker.io", "a__b/c-----d.e_f", "T_1.x-y", None, "a__b/c-----d.e_f:T_1.x-y"),
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev": (
        "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", None,
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
    ),
    # a first component with a "." is taken for a host; when it is not a valid host name but the
    # whole name is a valid path, Docker (Parse's regexp) keeps it all as a path with no domain
    "foo_bar.com/x": ("", "foo_bar.com/x", "latest", None, "foo_bar.com/x:latest"),
    "0.0_0/0:1": ("", "0.0_0/0", "1", None, "0.0_0/0:1"),
    # longest path: 255 characters, not counting the domain; the longest tag: 128
    "a/" * 127 + "a:tag-puts-this-over-max": ("docker.io", "a/" * 127 + "a", "tag-puts-this-over-max", None, "a/" * 127 + "a:tag-puts-this-over-max"),
    "example.com/" + "a/" * 127 + "a": ("example.com", "a/" * 127 + "a", "latest", None, "example.com/" + "a/" * 127 + "a:latest"),
    "ubuntu:" + "t" * 128: ("docker.io", "library/ubuntu", "t" * 128, None, "ubuntu:" + "t" * 128),
}

# input -> Docker's exact message
INVALID: dict[str, str] = {
    # the reference doc's examples
    "Uppercase:tag": REPO_UPPER.format("library/Uppercase"),
    "docker/Docker": REPO_UPPER.format("docker/Docker"),
    "-docker": "invalid reference format",
    "dock..er/docker": "invalid reference format",
    "docker///docker": "invalid reference format",
    "docker/": "invalid reference format",
    ":justtag": "invalid reference format",
    f"@{SHA}": "invalid reference format",
    "repo@sha256:" + "f" * 34: "invalid checksum digest length",
    "https://github.com/docker/docker": "invalid reference format",
    # a bare 64-hex string is an image ID
    HEX64: f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings",
    # more of distribution/reference's cases
    "": "invalid reference format",
    "-docker/docker": "invalid reference format",
    "-docker.io/docker/docker": "invalid reference format",
    "docker.io/docker/Docker": REPO_UPPER.format("docker/Docker"),
    "docker.io/docker///docker": "invalid reference format",
    "test:5000/Uppercase/lowercase:tag": REPO_UPPER.format("Uppercase/lowercase"),
    "localhost/Foo": REPO_UPPER.format("Foo"),
    "Foo:5000": REPO_UPPER.format("library/Foo"),
    "aa/asdf$$^/aa": "invalid reference format",
    "a^a": "invalid reference format",
    "validname@invaliddigest:" + HEX64: "unsupported digest algorithm",
    "repo@sha256:" + "F" * 64: "invalid checksum digest format",
    "repo@sha256:" + "f" * 63 + "g": "invalid reference format",
    "[2001:db8::1]": "invalid reference format",
    "[2001:db8::1]:5000": "invalid reference format",
    "[2001:db8::1]:tag": "invalid reference format",
    "[fe80::1%eth0]:5000/repo": "invalid reference format",
    "[fe80::1%@invalidzone]:5000/repo": "invalid reference format",
    "a/" * 128 + "a:tag": ERR_NAME_TOO_LONG,
    "example.com/" + "a/" * 128 + "a": ERR_NAME_TOO_LONG,
    "ubuntu:" + "t" * 129: "invalid reference format",
    "ubuntu:": "invalid reference format",
    "ubuntu:-tag": "invalid reference format",
    "ubuntu@": "invalid reference format",
    "a@b": "invalid reference format",
    "a_-b": "invalid reference format",
    "a___b": "invalid reference format",
    "a.-b": "invalid reference format",
    "a/b/": "invalid reference format",
    "/a": "invalid reference format",
    " ubuntu": "invalid reference format",
    "ubuntu ": "invalid reference format",
    "ubüntu": "invalid reference format",
}


@pytest.mark.parametrize("text", list(VALID), ids=lambda t: t[:60] or "<empty>")
def test_valid_references(text: str) -> None:
    domain, path, tag, digest, familiar = VALID[text]
    ref = parse_reference(text)
    assert ref == Reference(domain, path, tag, digest)
    name = f"{domain}/{path}" if domain else path
    assert ref.repository == name
    assert ref.familiar == familiar
    assert str(ref) == name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref


@pytest.mark.parametrize("text", list(INVALID), ids=lambda t: t[:60] or "<empty>")
def test_invalid_references_give_dockers_message(text: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert str(info.value) == INVALID[text]
    assert isinstance(info.value, ValueError)


def test_defaults_and_familiar_forms() -> None:
    ref = parse_reference("ubuntu")
    assert str(ref) == "docker.io/library/ubuntu:latest"
    assert ref.familiar == "ubuntu:latest" and ref.familiar_name == "ubuntu"
    assert parse_reference("ubuntu", default_tag=None).tag is None
    assert str(parse_reference("ubuntu", default_tag=None)) == "docker.io/library/ubuntu"
    # library/ is only implied on Docker Hub, and only stripped there when nothing follows it
    assert parse_reference("localhost/ubuntu").familiar_name == "localhost/ubuntu"
    assert parse_reference("docker.io/library/a/b").familiar_name == "library/a/b"
    assert parse_reference("ubuntu").with_tag("22.04").familiar == "ubuntu:22.04"
    assert parse_reference(f"ubuntu:1@{SHA}").with_tag("2") == Reference("docker.io", "library/ubuntu", "2", None)


def test_familiar_form_can_change_meaning() -> None:
    """Docker's short form drops ``docker.io/``; when the path's first component looks like a
    host, the short form names another registry.  Docker has the same quirk; the full form is safe."""
    ref = parse_reference("docker.io/example.com/app")
    assert ref == Reference("docker.io", "example.com/app", "latest", None)
    assert ref.familiar == "example.com/app:latest"
    assert parse_reference(ref.familiar) == Reference("example.com", "app", "latest", None)
    assert parse_reference(str(ref)) == ref


def test_tags_and_image_ids() -> None:
    assert validate_tag("v1.0_rc-2") == "v1.0_rc-2"
    for bad in ("", ".x", "-x", "a/b", "a:b", "x" * 129):
        with pytest.raises(InvalidReferenceError, match="^invalid tag format$"):
            validate_tag(bad)
    assert is_image_id(HEX64) and is_image_id(SHA)
    assert not is_image_id(HEX64[:12]) and not is_image_id("F" * 64)


def test_reference_is_frozen_and_hashable() -> None:
    ref = parse_reference("ubuntu")
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]
    assert len({ref, parse_reference("docker.io/library/ubuntu:latest")}) == 1
    with pytest.raises(TypeError):
        parse_reference(b"ubuntu")  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------------

_alnum = st.text("abcz019", min_size=1, max_size=4)
_sep = st.sampled_from([".", "_", "__", "-", "---"])
_component = st.builds(lambda a, rest: a + "".join(s + b for s, b in rest), _alnum, st.lists(st.tuples(_sep, _alnum), max_size=2))
_path = st.lists(_component, min_size=1, max_size=4).map("/".join)
_domain = st.one_of(
    st.none(),
    st.sampled_from(["localhost", "localhost:5000", "docker.io", "index.docker.io", "Example.COM", "a.b-c.d:443",
                     "[::1]", "[fe80::2]:5000", "10.0.0.1:80", "Registry"]),
)
_tag = st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"))
_digest = st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h))


@given(_domain, _path, _tag, _digest)
def test_parse_of_str_is_identity_on_the_grammar(domain: str | None, path: str, tag: str | None, digest: str | None) -> None:
    text = (f"{domain}/" if domain else "") + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assume(len(path) <= 255)
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as exc:
        # the only grammatical strings refused: a 64-hex name
        assert "64-byte hexadecimal" in str(exc)
        return
    assert parse_reference(str(ref)) == ref
    first = ref.familiar_name.split("/")[0]
    if ref.domain != "docker.io" or not ("." in first or ":" in first or first == "localhost"):
        assert parse_reference(ref.familiar) == ref  # else see test_familiar_form_can_change_meaning
    assert ref.tag == (tag if tag else (None if digest else "latest"))
    assert ref.digest == digest


@given(st.text("aAbz09.:/@_-[]", max_size=30))
def test_any_string_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError:
        return
    assert parse_reference(str(ref)) == ref


# -- differential: the docker client itself, when installed ------------------------------------------

DOCKER = shutil.which("docker")


def _docker_verdict(text: str, tmp: str) -> str:
    """Docker's parse of ``text``: its error message, or "valid" when it went on to connect."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "DOCKER_CONFIG": tmp,
           "DOCKER_HOST": f"unix://{tmp}/no-daemon.sock"}
    assert DOCKER is not None
    out = subprocess.run([DOCKER, "pull", "--", text], capture_output=True, text=True, env=env, timeout=30)
    message = (out.stderr or out.stdout).strip().splitlines()[0] if (out.stderr or out.stdout).strip() else ""
    if "Cannot connect to the Docker daemon" in message:
        return "valid"
    return message


def _our_verdict(text: str) -> str:
    try:
        parse_reference(text)
    except InvalidReferenceError as exc:
        return str(exc)
    return "valid"


@pytest.mark.skipif(DOCKER is None, reason="no docker client installed")
def test_docker_client_agrees_on_every_table_entry(tmp_path: os.PathLike[str]) -> None:
    # "" is left out: the docker client refuses an empty argument before parsing it.
    cases = [t for t in [*VALID, *INVALID] if t]
    disagreements = {t: (_docker_verdict(t, str(tmp_path)), _our_verdict(t)) for t in cases}
    disagreements = {t: v for t, v in disagreements.items() if v[0] != v[1]}
    assert not disagreements


@pytest.mark.skipif(DOCKER is None, reason="no docker client installed")
@given(st.text("aAz09.:/@_-", min_size=1, max_size=16))
def test_docker_client_agrees_on_random_strings(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        assert _our_verdict(text) == _docker_verdict(text, tmp)
