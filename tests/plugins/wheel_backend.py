"""A PEP 517 build backend for the tests' throwaway plugins, copied into each source tree.

The test environment has no ``wheel`` package and no index to fetch one from, so
setuptools cannot build wheels offline. This backend needs nothing but the standard
library: it zips the package folder with the metadata pip reads (METADATA,
entry_points.txt, WHEEL, RECORD). pip itself does the installing, as in production.

Configuration comes from ``[tool.roomd-test]`` in pyproject.toml: name, version,
package, and the ``roomd.agents`` entry points.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tomllib
import zipfile


def _project() -> dict[str, object]:
    with open("pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["roomd-test"]


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory: str, config_settings: object = None,
                metadata_directory: object = None) -> str:
    project = _project()
    name, version, package = str(project["name"]), str(project["version"]), str(project["package"])
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(package):
        for filename in sorted(names):
            if filename.endswith(".py"):
                path = os.path.join(root, filename)
                with open(path, "rb") as f:
                    files[path.replace(os.sep, "/")] = f.read()
    entry_points = "".join(f"{k} = {v}\n" for k, v in dict(project["entry_points"]).items())
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/entry_points.txt"] = f"[roomd.agents]\n{entry_points}".encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: roomd-test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return wheel_name


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []
