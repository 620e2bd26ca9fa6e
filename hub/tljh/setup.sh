#!/usr/bin/env bash
# The Littlest JupyterHub (TLJH) for this course: one server, up to about 100 students.
# Run as root on a fresh Ubuntu server AFTER installing TLJH (hub/README.md, step 1), from a
# clone of this repository:  sudo bash hub/tljh/setup.sh
# Each step is idempotent; re-run after changing INSTRUCTORS or the limits.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"    # the repository's hub/ folder
REPO="$(dirname "$HERE")"
USER_ENV=/opt/tljh/user                     # TLJH's environment for every user's server

# 1. The course's packages in the users' environment (torch, the kit, nbgrader, ...).
"$USER_ENV/bin/pip" install --quiet "$REPO"

# 2. The exchange on this server: world-writable with the sticky bit, as nbgrader expects.
install -d -m 1777 /srv/nbgrader/exchange

# 3. Role configs: students get the Assignment List, instructors the formgrader.
install -d /srv/course-hub/config
cp -r "$HERE/real/student" "$HERE/real/instructor" /srv/course-hub/config/
install -m 644 "$HERE/real/course_roles.py" /opt/tljh/config/jupyterhub_config.d/course_roles.py

# 4. A real authenticator (pick one; hub/README.md "Logging in"): here the LMS over LTI 1.3.
"$USER_ENV/../hub/bin/pip" install --quiet "jupyterhub-ltiauthenticator>=1.6,<2"
tljh-config set auth.type ltiauthenticator.lti13.auth.LTI13Authenticator
# tljh-config set LTI13Authenticator.issuer https://canvas.example.edu
# tljh-config set LTI13Authenticator.client_id <the LMS's client id>
# tljh-config set LTI13Authenticator.authorize_url https://canvas.example.edu/api/lti/authorize_redirect
# tljh-config set LTI13Authenticator.jwks_endpoint https://canvas.example.edu/api/lti/security/jwks

# 5. Limits per student: the assignments train small networks on one thread.
tljh-config set limits.memory 2G
tljh-config set limits.cpu 1
tljh-config set services.cull.timeout 3600
tljh-config set user_environment.default_app jupyterlab

tljh-config reload
echo "TLJH is set up for the course: see hub/README.md for releasing and grading."
