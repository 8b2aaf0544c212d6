# Builds the utfall binary; used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p utfall

FROM debian:bookworm-slim
# Named volumes mounted on these folders take their owner from the image.
RUN useradd --system --home /var/lib/utfall utfall && mkdir -p /var/lib/utfall /lake && chown utfall /var/lib/utfall /lake
COPY --from=build /src/target/release/utfall /usr/local/bin/utfall
USER utfall
WORKDIR /var/lib/utfall
EXPOSE 8080
ENTRYPOINT ["utfall"]
# Inside a container the server must listen on all addresses; publish the
# port on loopback and put a TLS proxy in front, or give --tls-cert/--tls-key.
CMD ["serve", "--http", "0.0.0.0:8080", "--insecure-listen"]
