# Python 3.11 on the Debian base, as Docker's python:3.11-slim-bookworm offers it (the
# interpreter, venv and ensurepip): made here when no registry can be reached.
#   docker build --network host -f deploy/images/python.Dockerfile \
#     --build-arg BASE_IMAGES=stackling-local -t stackling-local/python:3.11-slim-bookworm .
ARG BASE_IMAGES=stackling-local
FROM ${BASE_IMAGES}/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1
CMD ["python3"]
