# RabbitMQ from Debian's packages, with the management plugin and the interface of
# Docker's rabbitmq:3-management that docker-compose.yml relies on: the node's data in
# /var/lib/rabbitmq, guest allowed from other containers, /etc/rabbitmq/rabbitmq.conf
# read at start, rabbitmq-diagnostics for the health check, ports 5672 and 15672.
ARG BASE_IMAGES=stackling-local
FROM ${BASE_IMAGES}/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rabbitmq-plugins --offline enable rabbitmq_management >/dev/null \
 && printf 'loopback_users.guest = false\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n' \
      > /etc/rabbitmq/rabbitmq.conf \
 && rm -rf /var/lib/rabbitmq/mnesia /var/log/rabbitmq/* \
 && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq
# Logs to stdout, as the official image does.
ENV RABBITMQ_LOGS=- LANG=C.UTF-8
USER rabbitmq
WORKDIR /var/lib/rabbitmq
EXPOSE 5672 15672
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
