# syntax=docker/dockerfile:1
# The trainer image: the project installed from its own files (requirements.txt, pyproject.toml) into a
# virtual environment, run as a non-root user, `python -m trainer` as the entry point.
#
#   docker build -t REGISTRY/sp500-trainer:TAG .                              # CPU torch (default)
#   docker build --build-arg TORCH_VARIANT=cu128 -t REGISTRY/sp500-trainer:TAG-cu128 .   # CUDA 12.8 torch
#
# TORCH_VARIANT names a wheel index of download.pytorch.org (cpu, cu126, cu128, ...); torch's version is
# the one pinned in requirements.txt. The build stage holds pip's caches and build backends; the final
# stage gets only the virtual environment and the sources it points at (the install is editable, so the
# shipped snapshot under data-pipeline/data/raw stays where the ETL looks for it).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN torch_pin="$(grep -E '^torch==' requirements.txt)" \
 && pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "${torch_pin}" \
 && pip install -r requirements.txt
COPY data-pipeline/ data-pipeline/
COPY model/ model/
RUN pip install --no-deps -e . && python -c "import etl, trainer, torch; print('torch', torch.__version__)"

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 1000 trainer && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp trainer
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /app
USER 1000:1000
ENTRYPOINT ["python", "-m", "trainer"]
CMD ["--help"]
