# One image for web, worker and beat (docker-compose.yml). CPU torch by default; for a GPU worker build
# with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (or your CUDA's index).
FROM python:3.11-slim-bookworm
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CODEPREF_VAR_DIR=/var/lib/codepref STATIC_ROOT=/app/staticfiles
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap util-linux git curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --create-home --uid 10001 codepref \
 && mkdir -p /var/lib/codepref && chown -R codepref /var/lib/codepref
# The web and beat containers drop to the unprivileged user; the worker keeps root only so that the
# sandbox can switch to a throwaway uid for each test run (see training/sandbox/).
EXPOSE 8000
CMD ["gunicorn", "feedback.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--access-logfile", "-"]
