# PostgreSQL 15 from Debian's packages, with the interface of Docker's postgres:15 that
# docker-compose.yml relies on: data in /var/lib/postgresql/data (initialised on first
# start with POSTGRES_PASSWORD for the postgres role), the scripts of
# /docker-entrypoint-initdb.d run once after that, pg_isready, port 5432.
ARG BASE_IMAGES=stackling-local
FROM ${BASE_IMAGES}/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    /var/lib/postgresql/15 /etc/postgresql/15 \
 # The JIT's LLVM is over a third of the image and is off here (jit=off below): removed,
 # with the plugin that loads it. Nothing is installed on top of this image.
 && dpkg --purge --force-depends libllvm14 libz3-4 >/dev/null \
 && rm -f /usr/lib/postgresql/15/lib/llvmjit*.so \
 && rm -rf /usr/lib/postgresql/15/lib/bitcode \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
USER postgres
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
