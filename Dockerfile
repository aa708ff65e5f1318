# Multi-stage build: the builder makes the wheel (its build step compiles the catalogues, see setup.py);
# the runtime image installs that wheel and nothing else into a slim Python and runs as an unprivileged user.
FROM python:3.11-slim AS builder
WORKDIR /src
# The whole source tree less what .dockerignore leaves out: pyproject.toml decides what goes in the wheel.
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LOG_FORMAT=json
COPY --from=builder /wheels /wheels
# The administrative-region index is built once here (seconds), not by every container at its first import.
ENV REGION_CACHE_DIR=/opt/yizhan/regions
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && python -c "from bot.config import Settings; from storage.regions import RegionLookup; RegionLookup(Settings().region_cache_dir).index()" \
 && useradd --create-home --uid 10001 yizhan
USER yizhan
WORKDIR /home/yizhan
EXPOSE 8080
ENTRYPOINT ["yizhan"]
CMD ["run"]
