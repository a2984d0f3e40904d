"""gRPC: channels with the client interceptors and the client-side error table, the server with
its platform interceptor, and the user directory that several services share."""
