# Multi-stage build: wheels and compiled catalogues in the builder, a slim non-root runtime.
FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md babel.cfg ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
RUN pip install --no-cache-dir --prefix=/install . \
 && pip install --no-cache-dir babel \
 && pybabel compile -d locales -D messages

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 yizhan
COPY --from=builder /install /usr/local
# The catalogues are looked up next to the packages (bot/i18n.py: LOCALES_DIR).
COPY --from=builder /src/locales /usr/local/lib/python3.11/site-packages/locales
USER yizhan
WORKDIR /home/yizhan
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["yizhan"]
CMD ["run"]
