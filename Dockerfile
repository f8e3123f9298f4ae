FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FILROUGE_VAR_DIR=/var/lib/filrouge
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client wrk \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/filrouge filrouge
WORKDIR /app
COPY pyproject.toml constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt .
COPY . .
RUN SECRET_KEY=build FILROUGE_CREDENTIAL_KEYS=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    python manage.py collectstatic --noinput --verbosity 0
USER filrouge
EXPOSE 8000
CMD ["gunicorn", "panel.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000", "--workers", "4"]
