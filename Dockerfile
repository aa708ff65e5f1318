# Multi-stage build: the builder makes a wheel and compiles the catalogues; the runtime image installs
# them into a slim Python and runs as an unprivileged user.
FROM python:3.11-slim AS builder
WORKDIR /src
RUN pip install --no-cache-dir build babel
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
RUN pybabel compile -d locales -D messages --statistics \
 && python -m build --wheel --outdir /wheels

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LOG_FORMAT=json
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --create-home --uid 10001 yizhan
# bot/i18n.py looks for the catalogues next to the installed packages.
COPY --from=builder /src/locales /usr/local/lib/python3.11/site-packages/locales
USER yizhan
WORKDIR /home/yizhan
EXPOSE 8080
ENTRYPOINT ["yizhan"]
CMD ["run"]
