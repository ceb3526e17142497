# One image for every Loupe process (web, worker, beat, relay, Ray Serve, migrations).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NO_ALBUMENTATIONS_UPDATE=1 \
    RAY_USAGE_STATS_ENABLED=0

WORKDIR /app

# torch first, from PyTorch's CPU index: PyPI's default torch is a CUDA build of several GB.
# For a GPU host: docker compose build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (the same torch==2.13.0 pin, CUDA build), then give the ray service the GPU.
# Never add torchvision or timm: transformers picks them up and breaks without a match.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0

# Dependencies before the code, so that a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

COPY . .
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 1000 loupe \
    && mkdir -p /var/lib/loupe && chown loupe /var/lib/loupe
USER loupe

EXPOSE 8000 8001
# Health checks are per service in docker-compose.yml: the processes differ, the image not.
CMD ["uvicorn", "app.web:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
