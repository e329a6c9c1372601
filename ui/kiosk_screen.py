"""Routes for this face (being built)."""

from fastapi import APIRouter


def router(core) -> APIRouter:
    return APIRouter()
