"""Installed-base endpoints: regions, service points, customers, sites, contacts, models, devices, contracts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from incucare.domain.model import Co2SensorType, ContractKind, CustomerKind, DeviceStatus
from incucare.services import installed_base as ib
from incucare.web.api.schemas import (
    ContactIn,
    ContactOut,
    ContractIn,
    ContractOut,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    DeviceIn,
    DeviceModelIn,
    DeviceModelOut,
    DeviceOut,
    DevicePatch,
    HistoryOut,
    PageOut,
    RegionOut,
    ServicePointOut,
    SiteIn,
    SiteOut,
    page_of,
)
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["installed base"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/regions", response_model=list[RegionOut])
def regions(actor: ActorDep, uow: UowDep) -> list[RegionOut]:
    """Service regions and the provinces they cover."""
    return [RegionOut(id=r.id, code=r.code, name_zh=r.name_zh, name_en=r.name_en, provinces=r.provinces)
            for r in ib.list_regions(uow.session)]


@router.get("/service-points", response_model=list[ServicePointOut])
def service_points(actor: ActorDep, uow: UowDep) -> list[ServicePointOut]:
    """HQ and the regional dispatch points."""
    return [ServicePointOut(id=p.id, code=p.code, name=p.name, city=p.city, region_id=p.region_id,
                            is_hq=p.is_hq, latitude=p.latitude, longitude=p.longitude)
            for p in ib.list_service_points(uow.session)]


@router.get("/customers", response_model=PageOut[CustomerOut])
def customers(actor: ActorDep, uow: UowDep, q: str | None = None, kind: CustomerKind | None = None,
              vip: bool | None = None, region_id: int | None = None,
              limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Customers in the caller's scope."""
    page = ib.list_customers(uow.session, actor, q=q, kind=kind, vip=vip, region_id=region_id,
                             limit=limit, offset=offset)
    return page_of(page, CustomerOut.of)


@router.post("/customers", response_model=CustomerOut, status_code=201)
def create_customer(body: CustomerIn, actor: ActorDep, uow: UowDep, now: NowDep) -> CustomerOut:
    """Register a customer organisation."""
    customer = ib.create_customer(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return CustomerOut.of(customer)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def customer(customer_id: int, actor: ActorDep, uow: UowDep) -> CustomerOut:
    """One customer."""
    return CustomerOut.of(ib.get_customer(uow.session, actor, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def patch_customer(customer_id: int, body: CustomerPatch, actor: ActorDep, uow: UowDep,
                   now: NowDep) -> CustomerOut:
    """Change some fields of a customer."""
    changes = body.model_dump(exclude_unset=True)
    if "kind" in changes and changes["kind"] is not None:
        changes["kind"] = CustomerKind(changes["kind"]).value
    customer = ib.update_customer(uow.session, actor, customer_id, now=now, changes=changes)
    uow.commit()
    return CustomerOut.of(customer)


@router.get("/customers/{customer_id}/contacts", response_model=list[ContactOut])
def contacts(customer_id: int, actor: ActorDep, uow: UowDep) -> list[ContactOut]:
    """People to call at a customer."""
    return [ContactOut.model_validate(c) for c in ib.list_contacts(uow.session, actor, customer_id)]


@router.post("/customers/{customer_id}/contacts", response_model=ContactOut, status_code=201)
def create_contact(customer_id: int, body: ContactIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ContactOut:
    """Add a contact person."""
    contact = ib.create_contact(uow.session, actor, now=now, customer_id=customer_id, **body.model_dump())
    uow.commit()
    return ContactOut.model_validate(contact)


@router.get("/sites", response_model=PageOut[SiteOut])
def sites(actor: ActorDep, uow: UowDep, customer_id: int | None = None,
          limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Sites in scope."""
    return page_of(ib.list_sites(uow.session, actor, customer_id=customer_id, limit=limit, offset=offset),
                   SiteOut.of)


@router.post("/sites", response_model=SiteOut, status_code=201)
def create_site(body: SiteIn, actor: ActorDep, uow: UowDep, now: NowDep) -> SiteOut:
    """Add a site; its address is geocoded offline."""
    site = ib.create_site(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return SiteOut.of(site)


@router.get("/sites/{site_id}", response_model=SiteOut)
def site(site_id: int, actor: ActorDep, uow: UowDep) -> SiteOut:
    """One site."""
    return SiteOut.of(ib.get_site(uow.session, actor, site_id))


@router.get("/device-models", response_model=list[DeviceModelOut])
def device_models(actor: ActorDep, uow: UowDep) -> list[DeviceModelOut]:
    """The incubator model catalogue."""
    return [DeviceModelOut.model_validate(m) for m in ib.list_device_models(uow.session)]


@router.post("/device-models", response_model=DeviceModelOut, status_code=201)
def create_device_model(body: DeviceModelIn, actor: ActorDep, uow: UowDep, now: NowDep) -> DeviceModelOut:
    """Add a model to the catalogue."""
    data = body.model_dump()
    data["co2_sensor"] = Co2SensorType(data["co2_sensor"])
    row = ib.create_device_model(uow.session, actor, now=now, **data)
    uow.commit()
    return DeviceModelOut.model_validate(row)


@router.get("/devices", response_model=PageOut[DeviceOut])
def devices(actor: ActorDep, uow: UowDep, serial: str | None = None, q: str | None = None,
            customer_id: int | None = None, site_id: int | None = None, model_id: int | None = None,
            status: DeviceStatus | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Devices in scope; ``serial`` matches exactly, ``q`` searches serials and customer names."""
    page = ib.list_devices(uow.session, actor, serial=serial, q=q, customer_id=customer_id, site_id=site_id,
                           model_id=model_id, status=status, limit=limit, offset=offset)
    return page_of(page, DeviceOut.of)


@router.post("/devices", response_model=DeviceOut, status_code=201)
def create_device(body: DeviceIn, actor: ActorDep, uow: UowDep, now: NowDep) -> DeviceOut:
    """Register an incubator."""
    data = body.model_dump()
    data["status"] = DeviceStatus(data["status"])
    device = ib.create_device(uow.session, actor, now=now, **data)
    uow.commit()
    return DeviceOut.of(ib.get_device(uow.session, actor, device.id))


@router.get("/devices/{device_id}", response_model=DeviceOut)
def device(device_id: int, actor: ActorDep, uow: UowDep) -> DeviceOut:
    """One device."""
    return DeviceOut.of(ib.get_device(uow.session, actor, device_id))


@router.patch("/devices/{device_id}", response_model=DeviceOut)
def patch_device(device_id: int, body: DevicePatch, actor: ActorDep, uow: UowDep, now: NowDep) -> DeviceOut:
    """Move a device, update firmware, status or warranty."""
    device = ib.update_device(uow.session, actor, device_id, now=now, changes=body.model_dump(exclude_unset=True))
    uow.commit()
    return DeviceOut.of(device)


@router.get("/devices/{device_id}/history", response_model=PageOut[HistoryOut])
def device_history(device_id: int, actor: ActorDep, uow: UowDep, limit: Limit = 100,
                   offset: Offset = 0) -> dict[str, Any]:
    """Tickets, visits, parts and calibrations of a device, newest first."""
    return page_of(ib.device_history(uow.session, actor, device_id, limit=limit, offset=offset), HistoryOut.of)


@router.get("/contracts", response_model=PageOut[ContractOut])
def contracts(actor: ActorDep, uow: UowDep, customer_id: int | None = None, kind: ContractKind | None = None,
              active_on: date | None = None, device_id: int | None = None,
              limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Contracts in scope."""
    page = ib.list_contracts(uow.session, actor, customer_id=customer_id, kind=kind, active_on=active_on,
                             device_id=device_id, limit=limit, offset=offset)
    return page_of(page, ContractOut.of)


@router.post("/contracts", response_model=ContractOut, status_code=201)
def create_contract(body: ContractIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ContractOut:
    """Sign a warranty, annual maintenance or VIP agreement over some devices."""
    contract = ib.create_contract(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return ContractOut.of(contract)


@router.get("/contracts/{contract_id}", response_model=ContractOut)
def contract(contract_id: int, actor: ActorDep, uow: UowDep) -> ContractOut:
    """One contract."""
    return ContractOut.of(ib.get_contract(uow.session, actor, contract_id))
