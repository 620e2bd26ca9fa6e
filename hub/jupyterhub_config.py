"""JupyterHub configuration of the local course hub (`make hub`).

FOR TRYING THE COURSE OUT ON ONE MACHINE ONLY: students share one password and
every single-user server runs as the same Unix user. A real class: see
hub/README.md (The Littlest JupyterHub, Zero to JupyterHub, a real authenticator).

`make hub` (python -m pruning_kit.course hub) writes the settings this file
reads (roster, ports, exchange, passwords) into .hub/settings.json and starts
`jupyterhub -f hub/jupyterhub_config.py` with PRUNING_KIT_HUB_SETTINGS pointing there.
"""

from pruning_kit.course.hub import configure, load_settings

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
configure(c, load_settings())
