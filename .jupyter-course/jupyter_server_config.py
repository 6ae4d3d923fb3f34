"""The students' JupyterLab server (``make lab``), beside ``jupyter_server_config.json``.

JupyterLab's terminal runs a *login* shell whenever the server's stdout is not a terminal (a
Codespace, a container, ``make lab &``), and a login shell rebuilds ``PATH`` from ``/etc/profile``:
the project's ``.venv/bin``, which ``mlsys-lab lab`` puts first on the server's ``PATH``, is lost
and ``mlsys-lab validate ...`` is "command not found". Naming the shell makes it a plain
interactive shell that keeps the server's environment.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets when it loads this file)

c.ServerApp.terminado_settings = {"shell_command": [os.environ.get("SHELL") or "/bin/sh"]}
