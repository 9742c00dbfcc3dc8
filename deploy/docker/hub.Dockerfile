# The hub image of an xmailnb class on Kubernetes (deploy/z2jh/values.yaml):
# the chart's own hub image with xmailnb installed from this source tree
# (the authenticator, the board and the roster commands run in the hub pod).
#
#   docker build -f deploy/docker/hub.Dockerfile -t REGISTRY/xmailnb-hub:TAG .
#
# K8S_HUB_IMAGE: the hub image of your chart version (helm show values
# jupyterhub/jupyterhub --version X | grep -A3 'hub:' names its tag).
ARG K8S_HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.3.1
FROM ${K8S_HUB_IMAGE}

USER root
COPY --chown=root:root . /usr/local/src/xmailnb
# The source tree, not an index: xmailnb is not published.  The catalogs are
# compiled by the build (babel, a build requirement).
RUN python -m pip install --no-cache-dir /usr/local/src/xmailnb \
 && python -c "import xmailnb.classroom.hub, xmailnb.classroom.board, xmailnb.classroom.k8s" \
 && rm -rf /usr/local/src/xmailnb
USER ${NB_USER:-jovyan}
