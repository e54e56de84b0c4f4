"""The file-level `configurations` routes every configuration family shares (dialplan, park,
queue, pjsip): list the live file and its backups, show one, PUT the live one (validated; the
old text becomes a timestamped backup), DELETE a backup (the live file cannot be deleted).

PUT takes `{"data": "<file text>"}` (the shape GET returns), or the raw text with
Content-Type text/plain (any other type jade does not read is a 415)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from switchboard.api.common import JSON_BODY, after_commit, ctx, json_body, media_type, parse_json_object, read_body
from switchboard.api.jade import envelope
from switchboard.api.jade.routing import doc
from switchboard.domain.errors import Invalid, Malformed

FILE_BODY = (*JSON_BODY, "text/plain")


async def file_text(request: Request) -> str:
    raw = await read_body(request, FILE_BODY)
    if media_type(request.headers.get("content-type")) == "text/plain":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("the body is not UTF-8 text") from None
    data = parse_json_object(raw)
    if not isinstance(data.get("data"), str):
        raise Invalid("data", "must be the file's text")
    return data["data"]


def reload_after(request: Request, family: str) -> None:
    services = request.app.state.services
    after_commit(request, services.pbx.after_write(services, family))


def add_config_routes(api: APIRouter, prefix: str, family: str, label: str) -> None:
    async def list_files(request: Request):
        services, conn, _ = ctx(request)
        return envelope.listing(await services.configs.files(conn, family))

    async def show_file(request: Request, detail: str):
        services, conn, _ = ctx(request)
        return envelope.respond(await services.configs.file(conn, family, detail))

    async def put_file(request: Request, detail: str):
        services, conn, _ = ctx(request)
        await services.configs.put_file(conn, family, detail, await file_text(request))
        reload_after(request, family)
        return envelope.ok()

    async def delete_file(request: Request, detail: str):
        services, conn, _ = ctx(request)
        await services.configs.delete_file(conn, family, detail)
        return envelope.ok()

    base = f"{prefix}/configurations"
    op = family
    api.add_api_route(
        base,
        list_files,
        methods=["GET"],
        summary=f"{label} and its backups",
        operation_id=f"jade_{op}_configurations_list",
    )
    api.add_api_route(
        base + "/{detail}",
        show_file,
        methods=["GET"],
        summary=f"One {label} file",
        operation_id=f"jade_{op}_configuration_show",
    )
    api.add_api_route(
        base + "/{detail}",
        put_file,
        methods=["PUT"],
        summary=f"Replace the live {label}",
        openapi_extra=doc("file"),
        operation_id=f"jade_{op}_configuration_put",
    )
    api.add_api_route(
        base + "/{detail}",
        delete_file,
        methods=["DELETE"],
        summary=f"Delete a {label} backup",
        operation_id=f"jade_{op}_configuration_delete",
    )


def add_section_routes(api: APIRouter, path: str, family: str, label: str) -> None:
    """cfg_* routes: the sections of a family's file as {name, data: {option: value}}."""

    async def list_sections(request: Request):
        services, conn, _ = ctx(request)
        return envelope.listing(await services.configs.sections(conn, family))

    async def create_section(request: Request):
        services, conn, _ = ctx(request)
        data = await json_body(request)
        from switchboard.domain.pbxconf import data_options

        await services.configs.put_section(
            conn, family, data.get("name"), data_options(data.get("data", {})), create_only=True
        )
        reload_after(request, family)
        return envelope.ok()

    async def show_section(request: Request, detail: str):
        services, conn, _ = ctx(request)
        return envelope.respond(await services.configs.section(conn, family, detail))

    async def put_section(request: Request, detail: str):
        services, conn, _ = ctx(request)
        data = await json_body(request)
        from switchboard.domain.pbxconf import data_options

        options = data_options(
            data["data"] if isinstance(data.get("data"), dict) else {k: v for k, v in data.items() if k != "name"}
        )
        await services.configs.put_section(conn, family, detail, options, must_exist=True)
        reload_after(request, family)
        return envelope.ok()

    async def delete_section(request: Request, detail: str):
        services, conn, _ = ctx(request)
        await services.configs.delete_section(conn, family, detail)
        reload_after(request, family)
        return envelope.ok()

    api.add_api_route(
        path,
        list_sections,
        methods=["GET"],
        summary=f"All {label}s in the file",
        operation_id=f"jade_{family}_cfg_list",
    )
    api.add_api_route(
        path,
        create_section,
        methods=["POST"],
        summary=f"Create a {label}: {{name, data}}",
        openapi_extra=doc("section"),
        operation_id=f"jade_{family}_cfg_create",
    )
    api.add_api_route(
        path + "/{detail}",
        show_section,
        methods=["GET"],
        summary=f"One {label}",
        operation_id=f"jade_{family}_cfg_show",
    )
    api.add_api_route(
        path + "/{detail}",
        put_section,
        methods=["PUT"],
        summary=f"Replace a {label}'s options: {{data: {{...}}}} or the options object",
        openapi_extra=doc("section_update"),
        operation_id=f"jade_{family}_cfg_put",
    )
    api.add_api_route(
        path + "/{detail}",
        delete_section,
        methods=["DELETE"],
        summary=f"Delete a {label}",
        operation_id=f"jade_{family}_cfg_delete",
    )
