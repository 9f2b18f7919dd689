"""The one thing pyproject.toml cannot say: ship the Streamlit app inside the package.

``frontend/`` (the app: ``app.py``, ``views/``, ``mlm_ui/``) stays where it is in the source tree
and is built into the wheel as ``market_liquidity_monitor/frontend/``, so ``mlm up`` from a
``pip install`` finds it there (``runtime.default_frontend``). Every other setting is in
pyproject.toml; package discovery lives here because pyproject's ``packages.find`` cannot map a
directory to another package name (``package-dir``) at the same time.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
APP = "market_liquidity_monitor.frontend"
# The app's folders (views/, mlm_ui/) as subpackages of the shipped copy, found rather than listed:
# a page folder added later ships too.
APP_PACKAGES = [APP] + [
    f"{APP}.{d.name}"
    for d in sorted((ROOT / "frontend").iterdir())
    if d.is_dir() and not d.name.startswith((".", "__")) and any(d.glob("*.py"))
]

setup(
    packages=[
        *find_packages(include=["market_liquidity_monitor", "market_liquidity_monitor.*"]),
        *APP_PACKAGES,
    ],
    package_dir={p: "frontend" + p[len(APP) :].replace(".", "/") for p in APP_PACKAGES},
)
