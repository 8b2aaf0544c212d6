# Builds the utfall binary; used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p utfall

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/utfall utfall && mkdir -p /var/lib/utfall && chown utfall /var/lib/utfall
COPY --from=build /src/target/release/utfall /usr/local/bin/utfall
USER utfall
WORKDIR /var/lib/utfall
EXPOSE 8080
ENTRYPOINT ["utfall"]
CMD ["serve", "--http", "0.0.0.0:8080"]
