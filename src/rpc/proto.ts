// Loads proto/mana.proto at runtime (the .proto stays the one source of truth).
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { PROTO_PATH } from "../paths.js";

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

interface ServiceCtor {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): grpc.Client;
  service: grpc.ServiceDefinition;
}

let cachedCtor: ServiceCtor | undefined;

// grpc-js prints its own errors ("E No address added ...") to stderr; mana reports failures
// itself in one line, so keep grpc-js quiet unless debugging.
if (!process.env.MANA_DEBUG && !process.env.GRPC_VERBOSITY) grpc.setLogVerbosity(grpc.logVerbosity.NONE);

export function coordinatorService(): ServiceCtor {
  if (cachedCtor) return cachedCtor;
  const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { mana: { v1: { Coordinator: ServiceCtor } } };
  cachedCtor = pkg.mana.v1.Coordinator;
  return cachedCtor;
}
