"""A second, independent UPnP client against the agent's IGD: Python's async-upnp-client (PyPI).

Run inside the lab's cc namespace with the cc's address as the only argument. Prints one line per step;
the Rust lab test checks them. Strict mode (non_strict=False): the descriptions must be valid for it.
"""

import asyncio
import sys

from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpActionResponseError
from async_upnp_client.search import async_search

IGD2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
WANIP2 = "urn:schemas-upnp-org:service:WANIPConnection:2"


async def main(cc_ip: str) -> int:
    found = []

    async def on_response(headers) -> None:
        found.append(headers)

    await async_search(on_response, timeout=2, search_target=IGD2, source=(cc_ip, 0))
    if not found:
        print("no IGD found")
        return 1
    location = found[0]["location"]
    print(f"discovered {found[0]['st']} at {location}")

    factory = UpnpFactory(AiohttpRequester(), non_strict=False)
    device = await factory.async_create_device(location)
    wanip = next(s for s in device.all_services if s.service_type == WANIP2)

    ext = await wanip.action("GetExternalIPAddress").async_call()
    print(f"external ip {ext['NewExternalIPAddress']}")

    await wanip.action("AddPortMapping").async_call(
        NewRemoteHost="",
        NewExternalPort=20574,
        NewProtocol="TCP",
        NewInternalPort=20574,
        NewInternalClient=cc_ip,
        NewEnabled=True,
        NewPortMappingDescription="async-upnp-client",
        NewLeaseDuration=3600,
    )
    print("added 20574")

    async def enumerate_entries(label: str) -> None:
        index = 0
        while True:
            try:
                entry = await wanip.action("GetGenericPortMappingEntry").async_call(
                    NewPortMappingIndex=index
                )
            except UpnpActionResponseError as e:
                print(f"{label} {index}: error {e.error_code}")
                return
            print(f"{label} {index}: {entry['NewExternalPort']} {entry['NewProtocol']} "
                  f"-> {entry['NewInternalClient']}:{entry['NewInternalPort']} "
                  f"lease {entry['NewLeaseDuration']}")
            index += 1

    await enumerate_entries("entry")

    await wanip.action("DeletePortMapping").async_call(
        NewRemoteHost="", NewExternalPort=20574, NewProtocol="TCP"
    )
    print("deleted 20574")
    try:
        await wanip.action("GetGenericPortMappingEntry").async_call(NewPortMappingIndex=0)
        print("after delete: an entry is still there")
    except UpnpActionResponseError as e:
        print(f"after delete: error {e.error_code}")
    await factory.requester.async_close() if hasattr(factory.requester, "async_close") else None
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
