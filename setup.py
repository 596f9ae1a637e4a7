"""Maps the top-level folders plugins/ and integrations/ to the import names accel.plugins and
accel.integrations, so neither shadows a generic top-level name. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

ROOTS = {"accel": "accel", "accel.plugins": "plugins", "accel.integrations": "integrations"}
packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]
# accel.plugins/integrations are declared by their own roots, not found again under accel/.
packages = sorted(set(packages))
setup(packages=packages, package_dir=ROOTS)
