"""The HTTP gateway (Starlette): authentication, uploads and the job API."""
