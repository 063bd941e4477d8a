# Docker image rules (not part of `make test`).
#   make docker        builds midnode:latest from build/bin/* with nothing pulled
#   make docker-smoke  builds midnode:smoke holding the built binaries plus the
#                      HTTP unit test, and runs that test inside a container
DOCKER_TAG ?= midnode:latest
.PHONY: docker-smoke

# The image always holds the plain (non-sanitizer) build.
docker:
	$(MAKE) --no-print-directory SAN=0 BUILD=build all
	@bash tools/docker-image.sh --tag $(DOCKER_TAG)

docker-smoke:
	$(MAKE) --no-print-directory SAN=0 BUILD=build all
	@bash tools/docker-image.sh --tag midnode:smoke --context build/docker-smoke \
	  build/bin/midnode build/bin/midctl build/bin/midbench build/tests/test_http
	docker run --rm --network none --entrypoint /usr/local/bin/test_http midnode:smoke
	@for b in midctl midnode; do \
	  if [ -x build/bin/$$b ]; then docker run --rm --entrypoint /usr/local/bin/$$b midnode:smoke --help >/dev/null 2>&1; \
	    echo "docker-smoke: $$b --help exited $$?"; fi; \
	done

# The compose cluster (docker/compose.yaml): four validators and obs1.
#   make docker-up     image (when missing or older than the binaries), node
#                      homes in build/docker-net, containers; waits until healthy
#   make docker-down   removes containers, network, volumes and the homes
# COMPOSE_PROJECT_NAME (default midnode) and the port variables listed in
# docker/compose.yaml pass through the environment.
.PHONY: docker-up docker-down docker-image-fresh

docker-image-fresh:
	$(MAKE) --no-print-directory SAN=0 BUILD=build all
	@if ! docker image inspect $(DOCKER_TAG) >/dev/null 2>&1 || \
	   [ build/bin/midnode -nt build/docker/binaries.txt ] || [ build/bin/midctl -nt build/docker/binaries.txt ]; then \
	  bash tools/docker-image.sh --tag $(DOCKER_TAG); \
	else echo "docker: $(DOCKER_TAG) is up to date"; fi

docker-up: docker-image-fresh
	@MIDNODE_IMAGE=$(DOCKER_TAG) bash tools/docker-cluster.sh up

docker-down:
	@MIDNODE_IMAGE=$(DOCKER_TAG) bash tools/docker-cluster.sh down
