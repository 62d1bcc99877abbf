"""
Tests of the package a user installs: its metadata, the files of the built
wheel and sdist, where the tests import txgetty from, the README as a package
index shows it, and C{python -m txgetty}.

.ci/run builds the wheel and the sdist first and names them in
C{TXGETTY_WHEEL} and C{TXGETTY_SDIST}; it runs this suite twice, against the
editable install of the README's command and against the wheel installed in
a fresh venv (C{TXGETTY_TEST_INSTALL=wheel}).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any
import email
import json
import os
import re
import sys
import tarfile
import tempfile
import txgetty
import txgetty.rpc
import zipfile

from twisted.application.service import IServiceMaker
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.plugin import getPlugins
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ..support.examples import ROOT
from ..support.packages import repository as _repository
from ..support.processes import CLITestCase, WAIT, _Spawner, runTxgetty


try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    tomllib = None  # type: ignore[assignment]


def _distribution() -> metadata.Distribution:
    """
    @return: the installed txgetty distribution (editable or not).
    """
    return metadata.distribution("txgetty")


def _directURL() -> dict[str, Any]:
    """
    @return: the installer's record of where txgetty came from (PEP 610),
        C{{}} if there is none.
    """
    text = _distribution().read_text("direct_url.json")
    return json.loads(text) if text else {}


def _isEditable() -> bool:
    """
    @return: whether txgetty is installed in editable mode.
    """
    return bool(_directURL().get("dir_info", {}).get("editable"))


def _artefact(variable: str) -> Path:
    """
    @param variable: C{TXGETTY_WHEEL} or C{TXGETTY_SDIST}.
    @return: the built file it names.
    @raise SkipTest: it is not set, outside CI.
    """
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI must set {variable} (.ci/run builds the wheel and the sdist first)")
        raise SkipTest(f"{variable} is not set: build with `python -m build` and set it (as .ci/run does)")
    return Path(value)


def _packageFiles() -> set[str]:
    """
    @return: the files of txgetty/ and twisted/plugins/ in the checkout
        that an install must carry (Python files and C{py.typed}).
    """
    files = set()
    for top in ("txgetty", "twisted/plugins"):
        for path in (ROOT / top).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                files.add(path.relative_to(ROOT).as_posix())
    return files


class InstallTests(SynchronousTestCase):
    """
    The suite tests the txgetty that is installed, not whatever lies in the
    current directory.
    """

    def test_importedFromInstall(self) -> None:
        """
        txgetty (and txgetty.rpc) come from where the installer put them:
        the checkout for an editable install, the venv's site-packages for
        a wheel, never the checkout then.  Under .ci/run's wheel run
        (C{TXGETTY_TEST_INSTALL=wheel}) the install is the wheel.
        """
        init = Path(txgetty.__file__).resolve()
        self.assertEqual(Path(txgetty.rpc.__file__).resolve().parent.parent, init.parent)
        if os.environ.get("TXGETTY_TEST_INSTALL") == "wheel":
            self.assertFalse(_isEditable(), "the wheel run must test a wheel install, not an editable one")
            self.assertTrue(_directURL().get("url", "").endswith(".whl"), _directURL())
        if _isEditable():
            self.assertEqual(init.parent.parent, ROOT)
        else:
            installed = Path(str(_distribution().locate_file("txgetty/__init__.py"))).resolve()
            self.assertEqual(init, installed)
            self.assertFalse(init.is_relative_to(ROOT / "txgetty"), f"txgetty imported from the checkout: {init}")
            self.assertTrue(init.is_relative_to(Path(sys.prefix).resolve()), f"{init} is not in {sys.prefix}")

    def test_pluginFromInstall(self) -> None:
        """
        twistd's plugin scan finds the txgetty plugin module next to the
        txgetty package it was installed with (site-packages, or the
        checkout of an editable install).
        """
        makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "txgetty"]
        self.assertEqual(len(makers), 1)
        plugin = Path(sys.modules["twisted.plugins.txgetty_plugin"].__file__ or "").resolve()
        self.assertEqual(plugin.parent.parent.parent, Path(txgetty.__file__).resolve().parent.parent)

    def test_typed(self) -> None:
        """
        The installed package carries C{py.typed} (PEP 561).
        """
        self.assertTrue((Path(txgetty.__file__).parent / "py.typed").is_file())


class MetadataTests(SynchronousTestCase):
    """
    The installed metadata, from the single source in pyproject.toml.
    """

    def test_version(self) -> None:
        """
        The installed version is C{txgetty.__version__}.
        """
        self.assertEqual(metadata.version("txgetty"), txgetty.__version__)

    def test_versionOnce(self) -> None:
        """
        pyproject.toml does not repeat the version: it is dynamic, read
        from txgetty/_version.py.
        """
        if tomllib is None:
            raise SkipTest("tomllib needs Python 3.11")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        self.assertNotIn("version", project["project"])
        self.assertIn("version", project["project"]["dynamic"])
        self.assertEqual(project["tool"]["setuptools"]["dynamic"]["version"],
                         {"attr": "txgetty._version.__version__"})

    def test_changelog(self) -> None:
        """
        CHANGELOG.md has a section for the current version.
        """
        text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        self.assertRegex(text, rf"(?m)^## {re.escape(txgetty.__version__)}\b")

    def test_licence(self) -> None:
        """
        The declared licence is MIT, and the LICENSE file shipped with the
        metadata is the MIT licence.
        """
        meta = _distribution().metadata
        self.assertEqual(meta["License-Expression"], "MIT")
        self.assertIn("LICENSE", meta.get_all("License-File") or [])
        text = (ROOT / "LICENSE").read_text(encoding="utf-8")
        self.assertTrue(text.startswith("MIT License\n"), text[:40])
        self.assertIn("Permission is hereby granted, free of charge", text)

    def test_pythonVersions(self) -> None:
        """
        The Python-version classifiers start at C{Requires-Python}'s lower
        bound, and the running Python is one of them.
        """
        meta = _distribution().metadata
        versions = [c.rsplit(" ", 1)[1] for c in meta.get_all("Classifier") or []
                    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
        self.assertEqual(meta["Requires-Python"], f">={versions[0]}")
        self.assertIn(f"{sys.version_info[0]}.{sys.version_info[1]}", versions)

    def test_extras(self) -> None:
        """
        The extras are there, each with its requirement: C{pip install
        txgetty[msgpack]} brings msgpack, and so on.
        """
        meta = _distribution().metadata
        self.assertLessEqual({"test", "dev", "bench", "msgpack", "orjson", "zstd", "lz4", "snappy", "otel"},
                             set(meta.get_all("Provides-Extra") or []))
        requirements = meta.get_all("Requires-Dist") or []
        for extra, package in (("msgpack", "msgpack"), ("orjson", "orjson"), ("zstd", "zstandard"),
                               ("lz4", "lz4"), ("snappy", "python-snappy"), ("dev", "mypy-zope"),
                               ("dev", "pydoctor"), ("otel", "opentelemetry-api")):
            self.assertTrue(any(r.startswith(package) and f'extra == "{extra}"' in r for r in requirements),
                            f"{extra} does not require {package}: {requirements}")
        for core in ("Twisted", "autobahn", "service_identity", "pyOpenSSL"):
            self.assertTrue(any(r.startswith(core) and "extra ==" not in r for r in requirements), core)

    def test_projectURLs(self) -> None:
        """
        Every project URL is in the repository, and the console script is
        declared.
        """
        repository = _repository()
        self.assertTrue(repository.startswith("https://"), repository)
        for entry in _distribution().metadata.get_all("Project-URL") or []:
            self.assertIn(repository, entry)
        scripts = {e.name: e.value for e in _distribution().entry_points if e.group == "console_scripts"}
        self.assertEqual(scripts, {"txgetty": "txgetty.tools.cli:main"})


class ReadmeTests(SynchronousTestCase):
    """
    README.md as a package index page shows it: the long description, with
    links that work away from the repository.
    """

    def test_longDescription(self) -> None:
        """
        The metadata's description is README.md, as Markdown.
        """
        meta = _distribution().metadata
        self.assertEqual(meta["Description-Content-Type"], "text/markdown")
        self.assertEqual(meta.get_payload().strip(), (ROOT / "README.md").read_text(encoding="utf-8").strip())

    def test_links(self) -> None:
        """
        Every link of README.md is absolute; each one into the repository
        names an existing file (C{/blob/main/PATH}) or directory
        (C{/tree/main/PATH}) of this checkout.
        """
        repository = _repository()
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"(?m)^\[[^\]]+\]:\s*(\S+)", text)
        self.assertTrue(links)
        inRepository = 0
        for link in links:
            self.assertRegex(link, r"^https?://", f"README.md links {link!r}: not absolute")
            if not link.startswith(repository + "/"):
                continue
            match = re.fullmatch(re.escape(repository) + r"/(blob|tree)/main/([^#]+)(#.*)?", link)
            self.assertIsNotNone(match, f"README.md links {link!r}: not /blob/main/ or /tree/main/")
            assert match is not None
            kind, path = match.group(1), ROOT / match.group(2)
            exists = path.is_file() if kind == "blob" else path.is_dir()
            self.assertTrue(exists, f"README.md links {link!r}: no such {'file' if kind == 'blob' else 'directory'}")
            inRepository += 1
        self.assertGreaterEqual(inRepository, 10)

    def test_opensWithTheTwoCommands(self) -> None:
        """
        README.md opens with the set-up-and-run command and the test
        command, as .ci/run runs the latter.
        """
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        commands = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
        assert commands is not None
        first, second = commands.group(1).splitlines()
        self.assertEqual(first, "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/twistd -n txgetty")
        self.assertEqual(second, "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/trial -j2 tests")
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        self.assertTrue("{ " + second + "; }" in ci, ".ci/run does not run the README's test command as written")


class APIDocsTests(SynchronousTestCase):
    """
    docs/api.md's promises about building the API reference and the type
    check.
    """

    def test_buildCommand(self) -> None:
        """
        The page's command installs the dev extra and runs C{.ci/apidocs},
        which .ci/run runs too; the output directory is C{apidocs/}, as
        pyproject.toml tells pydoctor, and git ignores it.
        """
        page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
        self.assertIn("python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .ci/apidocs\n", page)
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        self.assertIn(".ci/apidocs", ci)
        self.assertIn(".venv/bin/mypy", ci)
        self.assertIn("--warnings-as-errors", (ROOT / ".ci" / "apidocs").read_text(encoding="utf-8"))
        self.assertIn("apidocs/", (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines())
        if tomllib is None:
            raise SkipTest("tomllib needs Python 3.11")
        tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
        self.assertEqual((tool["pydoctor"]["html-output"], tool["pydoctor"]["docformat"]), ("apidocs", "epytext"))
        self.assertEqual(tool["mypy"]["plugins"], ["mypy_zope:plugin"])
        self.assertIn("txgetty", tool["mypy"]["files"])


class ArtefactTests(SynchronousTestCase):
    """
    The wheel and the sdist that .ci/run built hold what they must.
    """

    def test_wheelFiles(self) -> None:
        """
        The wheel holds every file of txgetty/ (all its packages) and
        twisted/plugins/, and no C{__init__.py} of Twisted's namespace, nor
        the tests.
        """
        names = set(zipfile.ZipFile(_artefact("TXGETTY_WHEEL")).namelist())
        code = {n for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        self.assertEqual(code, _packageFiles())
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        info = {n.split("/", 1)[1] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
        self.assertLessEqual({"METADATA", "RECORD", "WHEEL", "entry_points.txt", "licenses/LICENSE"}, info)

    def test_wheelMetadata(self) -> None:
        """
        The wheel's metadata is the installed one: same version, same
        requirements.
        """
        wheel = zipfile.ZipFile(_artefact("TXGETTY_WHEEL"))
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(wheel.read(name))
        self.assertEqual(meta["Version"], txgetty.__version__)
        self.assertEqual(sorted(meta.get_all("Requires-Dist") or []),
                         sorted(_distribution().metadata.get_all("Requires-Dist") or []))

    def test_sdistFiles(self) -> None:
        """
        The sdist holds what building, testing and documenting need: the
        packages, the tests, the docs, the examples, the benchmarks, the CI
        scripts, the metadata, README.md, LICENSE and CHANGELOG.md.
        """
        path = _artefact("TXGETTY_SDIST")
        with tarfile.open(path) as sdist:
            names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
        expected = _packageFiles() | {
            "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in", ".ci/run", ".ci/apidocs",
            "PKG-INFO",
        }
        for top in ("tests", "docs", "examples", "benchmarks"):
            expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
                         and "results" not in p.relative_to(ROOT).parts}
        self.assertEqual(expected - names, set())
        self.assertFalse({n for n in names if "__pycache__" in n or n.endswith(".pyc")})


async def _runModule(*args: str, stdin: bytes | None = None) -> tuple[str, str, int]:
    """
    Run C{python -m txgetty} to its end, in an empty directory (so that the
    current directory cannot supply another txgetty).

    @param args: its arguments.
    @param stdin: bytes for its standard input.
    @return: its standard output, standard error and exit code.
    """
    spawner = _Spawner()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory() as empty:
        d = getProcessOutputAndValue(sys.executable, ["-m", "txgetty", *args], env=env, path=empty,
                                     reactor=spawner, stdinBytes=stdin)
        killer = reactor.callLater(WAIT, spawner.kill)
        try:
            out, err, code = await d
        finally:
            if killer.active():
                killer.cancel()
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


class PythonDashMTests(CLITestCase):
    """
    C{python -m txgetty} is the C{txgetty} command.
    """

    async def test_help(self) -> None:
        """
        The same help, exit code 0.
        """
        self.assertEqual(await _runModule("--help"), await runTxgetty("--help"))
        out, err, code = await _runModule("call", "--help")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("Service.method", out)

    async def test_send(self) -> None:
        """
        C{python -m txgetty send} sends packets and prints the replies.
        """
        port = await self.startServer()
        out, err, code = await _runModule("send", f"127.0.0.1:{port}", "hello", "world")
        self.assertEqual((out, code), ("hello\nworld\n", 0), err)
        out, err, code = await _runModule("send", f"127.0.0.1:{port}", stdin=b"one\ntwo\n")
        self.assertEqual((out, code), ("one\ntwo\n", 0), err)

    async def test_errors(self) -> None:
        """
        Errors as the command gives them: a refused port exits 1 with the
        same message, a bad subcommand exits 2 with the same message.
        """
        port = await self.freePort()
        self.assertEqual(await _runModule("send", f"127.0.0.1:{port}", "x"),
                         await runTxgetty("send", f"127.0.0.1:{port}", "x"))
        out, err, code = await _runModule("send", f"127.0.0.1:{port}", "x")
        self.assertEqual(code, 1)
        self.assertIn("refused", err + out)
        out, err, code = await _runModule("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("frobnicate", err)
        self.assertEqual((out, err, code), await runTxgetty("frobnicate"))
