"""kazoo support routes over cluster documents and the routing documents.

Clusters (`/v2/support/clusters/{TARGET_CLUSTER_ID}`): PUT creates the document (201), or
replaces it when it exists (200; the spec gives no other way to change one); `api_key` is
encrypted on write and shown encrypted; DELETE answers the deleted document, but the master
cluster cannot be deleted (403) and a cluster that still holds subscriptions is 409. GET of the
list and of one cluster are added (the list shows which is the master: `master: true`).

Routing documents — customer clusters, carrier SBCs, media servers (`/v2/support/routing/...`):
GET the list (a summary per document, as the spec's lists show) or one; PUT creates (customer
clusters take the id from the path and a taken id is 409; SBCs and media servers get a generated
32-hex id) → 201; POST replaces; PATCH deep-merges (`null` deletes a key); DELETE answers the
deleted document. An SBC's `mobile_media_server` and a media server's `carrier_sbc_priority`
entries must name existing documents (400 with the field); deleting a document removes the
references to it from the others in the same transaction (an SBC loses its `mobile_media_server`,
media servers drop the SBC from their priority lists), so documents that name each other can be
deleted in any order and no reference ever names nothing."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx
from switchboard.api.kazoo import envelope
from switchboard.api.kazoo.routing import BODIES, body, router
from switchboard.domain.kazoo import CARRIER_SBC, CUSTOMER_CLUSTER, MEDIA_SERVER

clusters_api = router("clusters")
routing_api = router("routing")


@clusters_api.get("/clusters", summary="List cluster documents")
async def list_clusters(request: Request):
    services, conn, _ = ctx(request)
    return envelope.respond(request, await services.kazoo.clusters(conn))


@clusters_api.get("/clusters/{cluster_id}", summary="Get a cluster document")
async def get_cluster(request: Request, cluster_id: str):
    services, conn, _ = ctx(request)
    return envelope.respond(request, services.kazoo.cluster_view(await services.kazoo.cluster(conn, cluster_id)))


@clusters_api.put(
    "/clusters/{cluster_id}", status_code=201, summary="Create a cluster document", openapi_extra=BODIES["cluster"]
)
async def put_cluster(request: Request, cluster_id: str):
    services, conn, _ = ctx(request)
    data = envelope.data_of(await body(request))
    view, created = await services.kazoo.put_cluster(conn, cluster_id, data)
    return envelope.respond(request, view, 201 if created else 200)


@clusters_api.delete("/clusters/{cluster_id}", summary="Delete a cluster document")
async def delete_cluster(request: Request, cluster_id: str):
    services, conn, _ = ctx(request)
    return envelope.respond(request, await services.kazoo.delete_cluster(conn, cluster_id))


def _routes(path: str, kind: str, *, id_in_path: bool) -> None:
    label = kind.replace("_", " ")

    async def list_docs(request: Request):
        services, conn, _ = ctx(request)
        return envelope.respond(request, await services.kazoo.routing_list(conn, kind))

    async def get_doc(request: Request, doc_id: str):
        services, conn, _ = ctx(request)
        return envelope.respond(request, await services.kazoo.routing_get(conn, kind, doc_id))

    async def create_with_id(request: Request, doc_id: str):
        services, conn, _ = ctx(request)
        data = envelope.data_of(await body(request))
        return envelope.respond(request, await services.kazoo.routing_create(conn, kind, data, doc_id), 201)

    async def create(request: Request):
        services, conn, _ = ctx(request)
        data = envelope.data_of(await body(request))
        return envelope.respond(request, await services.kazoo.routing_create(conn, kind, data), 201)

    async def replace(request: Request, doc_id: str):
        services, conn, _ = ctx(request)
        data = envelope.data_of(await body(request))
        return envelope.respond(request, await services.kazoo.routing_replace(conn, kind, doc_id, data))

    async def patch(request: Request, doc_id: str):
        services, conn, _ = ctx(request)
        data = envelope.data_of(await body(request))
        return envelope.respond(request, await services.kazoo.routing_patch(conn, kind, doc_id, data))

    async def remove(request: Request, doc_id: str):
        services, conn, _ = ctx(request)
        return envelope.respond(request, await services.kazoo.routing_delete(conn, kind, doc_id))

    one = f"/routing/{path}/{{doc_id}}"
    routing_api.add_api_route(
        f"/routing/{path}", list_docs, methods=["GET"], summary=f"List routing {label}s", name=f"list_{kind}"
    )
    routing_api.add_api_route(one, get_doc, methods=["GET"], summary=f"Get a routing {label}", name=f"get_{kind}")
    if id_in_path:
        routing_api.add_api_route(
            one,
            create_with_id,
            methods=["PUT"],
            status_code=201,
            openapi_extra=BODIES["routing"],
            summary=f"Create a routing {label}",
            name=f"create_{kind}",
        )
    else:
        routing_api.add_api_route(
            f"/routing/{path}",
            create,
            methods=["PUT"],
            status_code=201,
            openapi_extra=BODIES["routing"],
            summary=f"Create a routing {label}",
            name=f"create_{kind}",
        )
    routing_api.add_api_route(
        one,
        replace,
        methods=["POST"],
        openapi_extra=BODIES["routing"],
        summary=f"Update a routing {label}",
        name=f"replace_{kind}",
    )
    routing_api.add_api_route(
        one,
        patch,
        methods=["PATCH"],
        openapi_extra=BODIES["empty"],
        summary=f"Patch a routing {label}",
        name=f"patch_{kind}",
    )
    routing_api.add_api_route(
        one, remove, methods=["DELETE"], summary=f"Delete a routing {label}", name=f"delete_{kind}"
    )


_routes("customer_clusters", CUSTOMER_CLUSTER, id_in_path=True)
_routes("carrier_sbcs", CARRIER_SBC, id_in_path=False)
_routes("media_servers", MEDIA_SERVER, id_in_path=False)
