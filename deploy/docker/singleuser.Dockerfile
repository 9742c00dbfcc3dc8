# The single-user image of an xmailnb class on Kubernetes: each trainee's
# workbook (python -m xmailnb.classroom.singleuser, Voila behind JupyterHub's
# OAuth), installed from this source tree.
#
#   docker build -f deploy/docker/singleuser.Dockerfile -t REGISTRY/xmailnb-singleuser:TAG .
FROM python:3.11-slim

# The chart runs single-user pods as uid 1000, gid 100 (singleuser.uid, fsGid).
RUN useradd --uid 1000 --gid 100 --create-home --home-dir /home/jovyan jovyan
COPY --chown=root:root . /usr/local/src/xmailnb
RUN python -m pip install --no-cache-dir /usr/local/src/xmailnb \
 && python -c "import xmailnb.classroom.singleuser" \
 && rm -rf /usr/local/src/xmailnb
USER 1000
WORKDIR /home/jovyan
ENV XMAILNB_DATA_DIR=/home/jovyan/xmailnb
EXPOSE 8888
CMD ["python", "-m", "xmailnb.classroom.singleuser"]
