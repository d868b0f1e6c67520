"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and kube-controller-manager 1.20.2.

The binaries come from `make kube` (scripts/kube-build.sh builds them from Debian's source package and
caches them in ${CHAOSPLANE_KUBE_CACHE:-~/.cache/chaosplane/kube-1.20.2}/bin). Everything listens on
127.0.0.1 only, on free ports, with its data, certificates and logs in one temporary directory.

There is no kubelet: pods are stored, scheduled nowhere and stay Pending; a Deployment's ReplicaSet still
creates and recreates them (the controller manager runs). Authentication is by static bearer tokens, one
kubeconfig context per user (see USERS); authorization is RBAC, anonymous requests are refused (401), so a
client that forgets its token fails loudly instead of passing as system:anonymous.

    cluster = KubeCluster.start()
    core = kubernetes.client.CoreV1Api(cluster.api_client("executor"))
    ...
    cluster.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_CACHE = Path.home() / ".cache" / "chaosplane" / "kube-1.20.2"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
CLUSTER_NAME = "chaosplane-test"
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # first address of SERVICE_CIDR: the `kubernetes` service
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class StaticUser:
    """A user of the token file, and the kubeconfig context that authenticates as it."""

    context: str
    name: str
    groups: tuple[str, ...]


ADMIN = StaticUser("admin", "admin", ("system:masters",))
EXECUTOR = StaticUser("executor", "chaosplane-executor", ("chaosplane:executors",))
NOBODY = StaticUser("nobody", "nobody", ())
USERS = (ADMIN, EXECUTOR, NOBODY)
# Not in the kubeconfig: the controller manager's own identity (system:masters, see _start_controller_manager)
_CONTROLLER_MANAGER = StaticUser("controller-manager", "system:kube-controller-manager", ("system:masters",))


class KubeBinariesMissing(RuntimeError):
    """The cached binaries are not there: `make kube` builds them."""


class KubeStartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


def bin_dir() -> Path:
    return Path(os.environ.get("CHAOSPLANE_KUBE_CACHE") or DEFAULT_CACHE) / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the test process dies without calling stop()."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pki(directory: Path) -> None:
    """A CA, an apiserver serving certificate it signs (127.0.0.1, localhost), a service-account key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{CLUSTER_NAME}-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
    ]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca.crt": ca_cert.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
        "apiserver.crt": serving_cert.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(serving_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, content in files.items():
        path = directory / name
        path.write_bytes(content)
        path.chmod(0o600)


class _Process:
    """One component: its process (in its own process group) and its log file."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, why: str) -> KubeStartError:
        code = self.popen.poll()
        state = "still running" if code is None else f"exited with {code}"
        return KubeStartError(f"{self.name} {why} ({state}); last lines of {self.log}:\n{self.tail()}")

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(grace)


class KubeCluster:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1; `start()` returns it ready."""

    def __init__(self, workdir: Path, binaries: Path) -> None:
        self.workdir = workdir
        self._bin = binaries
        self._tokens = {user.context: secrets.token_urlsafe(24) for user in (*USERS, _CONTROLLER_MANAGER)}
        self._processes: list[_Process] = []
        self._api_port = 0
        self.start_seconds = 0.0

    # --- public API -------------------------------------------------------------------------------
    @classmethod
    def start(cls, timeout: float = START_TIMEOUT) -> KubeCluster:
        """Start the three components and return once the apiserver is ready and the controllers serve.

        Raises KubeBinariesMissing when `make kube` has not been run, KubeStartError (with the failing
        component's log tail) when something does not come up within `timeout` seconds.
        """
        binaries = bin_dir()
        missing = [name for name in BINARIES if not os.access(binaries / name, os.X_OK)]
        if missing:
            raise KubeBinariesMissing(
                f"Kubernetes binaries missing from {binaries}: {', '.join(missing)}; run `make kube` "
                "(scripts/kube-build.sh builds them once, ~200 s, and caches them)"
            )
        cluster = cls(Path(tempfile.mkdtemp(prefix="chaosplane-kube-")), binaries)
        began = time.monotonic()
        try:
            cluster._start(began + timeout)
        except BaseException:
            cluster.stop()
            raise
        cluster.start_seconds = time.monotonic() - began
        atexit.register(cluster.stop)
        return cluster

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._api_port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def contexts(self) -> tuple[str, ...]:
        return tuple(user.context for user in USERS)

    def user(self, context: str) -> StaticUser:
        for user in USERS:
            if user.context == context:
                return user
        raise KeyError(f"no context {context!r}; contexts: {', '.join(self.contexts)}")

    def token(self, context: str) -> str:
        """The bearer token of a context's user ("admin", "executor" or "nobody")."""
        return self._tokens[self.user(context).context]

    def api_client(self, context: str = "admin") -> Any:
        """A `kubernetes.client.ApiClient` for one context, loaded from the kubeconfig file."""
        from kubernetes import config

        self.user(context)  # a clear KeyError for an unknown context
        return config.new_client_from_config(config_file=str(self.kubeconfig_path), context=context)

    def log_path(self, component: str) -> Path:
        return self.workdir / f"{component}.log"

    def stop(self) -> None:
        """Stop every process (controller manager, apiserver, etcd) and remove the temporary directory."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- start-up ---------------------------------------------------------------------------------
    def _start(self, deadline: float) -> None:
        pki = self.workdir / "pki"
        pki.mkdir()
        _write_pki(pki)
        # token,user,uid[,"group1,group2"] (no empty group field: it would be a group named "")
        token_lines = [
            f"{self._tokens[u.context]},{u.name},{u.name}" + (f',"{",".join(u.groups)}"' if u.groups else "")
            for u in (*USERS, _CONTROLLER_MANAGER)
        ]
        (self.workdir / "tokens.csv").write_text("\n".join(token_lines) + "\n")
        etcd_url = self._start_etcd()
        self._api_port = _free_port()
        self._write_kubeconfig(self.kubeconfig_path, USERS)
        self._write_kubeconfig(self.workdir / "controller-manager.kubeconfig", (_CONTROLLER_MANAGER,))
        # the apiserver retries etcd, so both start together; the controller manager gives up if the
        # apiserver is not healthy within 10 s of its own start, so it waits for a ready apiserver
        apiserver = self._start_apiserver(etcd_url)
        self._wait_http(self._processes[0], f"{etcd_url}/health", deadline, ssl_context=None)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        self._wait_http(apiserver, f"{self.server}/readyz", deadline, context, token=self.token("admin"))
        controller_manager, port = self._start_controller_manager()
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving certificate; /healthz only
        self._wait_http(controller_manager, f"https://127.0.0.1:{port}/healthz", deadline, insecure)

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        process = _Process(name, argv, self.log_path(name))
        self._processes.append(process)
        return process

    def _start_etcd(self) -> str:
        client, peer = _free_port(), _free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(self._bin / "etcd"),
                "--name=chaosplane",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=chaosplane={peer_url}",
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-level=warn",
            ],
        )
        return client_url

    def _start_apiserver(self, etcd_url: str) -> _Process:
        pki = self.workdir / "pki"
        return self._spawn(
            "kube-apiserver",
            [
                str(self._bin / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self._api_port}",
                "--insecure-port=0",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--anonymous-auth=false",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # 127.0.0.1 is not a valid endpoint address: do not maintain the `kubernetes` endpoints
                "--endpoint-reconciler-type=none",
                "--feature-gates=EphemeralContainers=true",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )

    def _start_controller_manager(self) -> tuple[_Process, int]:
        pki = self.workdir / "pki"
        kubeconfig = self.workdir / "controller-manager.kubeconfig"
        port = _free_port()
        process = self._spawn(
            "kube-controller-manager",
            [
                str(self._bin / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--port=0",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--leader-elect=false",
                # the token controller signs service-account token secrets; root CA for their ca.crt
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                f"--cluster-signing-cert-file={self.ca_file}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--profiling=false",
                "--v=1",
            ],
        )
        return process, port

    def _write_kubeconfig(self, path: Path, users: Sequence[StaticUser]) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": u.context, "user": {"token": self._tokens[u.context]}} for u in users],
            "contexts": [
                {"name": u.context, "context": {"cluster": CLUSTER_NAME, "user": u.context}} for u in users
            ],
            "current-context": users[0].context,
            "preferences": {},
        }
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        path.chmod(0o600)

    @staticmethod
    def _wait_http(
        process: _Process,
        url: str,
        deadline: float,
        ssl_context: ssl.SSLContext | None,
        token: str | None = None,
    ) -> None:
        """Poll `url` until it answers 200; fail at once if the process exits, or at the deadline."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last = "no answer yet"
        while True:
            if process.popen.poll() is not None:
                raise process.failure(f"exited before {url} answered (last: {last})")
            try:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=2, context=ssl_context) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read(500).decode(errors='replace').strip()[-300:]}"
            except (OSError, ssl.SSLError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise process.failure(f"not ready at {url} in time (last: {last})")
            time.sleep(0.1)
