# Multi-stage build: wheels are built once; the api image stays small; the worker image adds LibreOffice.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY requirements.txt ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY app ./app
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COPYDESK_ENV=production
RUN useradd --create-home --uid 1000 copydesk
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY alembic.ini ./
COPY alembic ./alembic
USER copydesk
EXPOSE 8000
CMD ["uvicorn", "app.api.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

FROM api AS worker
USER root
# LibreOffice converts legacy .doc manuscripts (headless, private profile per process).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libreoffice-writer-nogui \
 && rm -rf /var/lib/apt/lists/*
USER copydesk
CMD ["celery", "-A", "app.tasks", "worker", "-Q", "cpu", "-P", "prefork", "--loglevel=INFO", "-E"]
