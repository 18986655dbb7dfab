"""The vocabulary of the installed base and of tickets: code lists with zh/en labels and value objects.

Persistence lives in ``adapters/db``; these types are what the rules and the pages speak.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from incucare.domain.labels import LabelledEnum


class Role(LabelledEnum):
    """What a user does; decides which actions they may take and (with the tenant) what they see."""

    ADMIN = ("admin", "系统管理员", "Administrator")
    SERVICE_MANAGER = ("service_manager", "售后经理(总部)", "Service manager (HQ)")
    HQ_EXPERT = ("hq_expert", "总部技术专家", "HQ expert")
    DISPATCHER = ("dispatcher", "调度员", "Dispatcher")
    AGENT = ("agent", "一线客服(远程支持)", "Tier-1 agent")
    ENGINEER = ("engineer", "区域工程师", "Field engineer")
    PARTNER = ("partner", "区域经销商/服务商", "Regional partner")
    CUSTOMER = ("customer", "客户", "Customer")


STAFF_ROLES = frozenset(
    {Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT, Role.DISPATCHER, Role.AGENT, Role.ENGINEER}
)
"""Roles that work for the manufacturer and see the whole installed base."""

MANAGER_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
"""Roles allowed to edit master data (customers, contracts, devices) and import the installed base."""


class CustomerKind(LabelledEnum):
    """The kind of organisation: drives default priorities (embryos, GMP batches) and reporting."""

    IVF_CENTRE = ("ivf_centre", "生殖中心(IVF)", "IVF centre")
    HOSPITAL = ("hospital", "医院", "Hospital")
    GMP_PHARMA = ("gmp_pharma", "GMP制药企业", "GMP pharma")
    RESEARCH_LAB = ("research_lab", "高校/科研院所", "University / research lab")
    CDC = ("cdc", "疾控中心", "CDC")
    DISTRIBUTOR = ("distributor", "经销商", "Distributor")


class Co2SensorType(LabelledEnum):
    """CO2 sensing principle: infrared sensors drift less; thermal-conductivity ones need more calibration."""

    IR = ("ir", "红外(IR)", "Infrared (IR)")
    TC = ("tc", "热导(TC)", "Thermal conductivity (TC)")


class DeviceStatus(LabelledEnum):
    """Operational state of one incubator in the installed base."""

    IN_SERVICE = ("in_service", "运行中", "In service")
    UNDER_REPAIR = ("under_repair", "维修中", "Under repair")
    OUT_OF_SERVICE = ("out_of_service", "停用", "Out of service")
    DECOMMISSIONED = ("decommissioned", "已报废", "Decommissioned")
    LOANER = ("loaner", "备机(在库可借)", "Loaner (in the pool)")
    ON_LOAN = ("on_loan", "备机(借出中)", "Loaner (on loan)")
    REPLACED = ("replaced", "已整机调换", "Replaced by a new unit")


class ContractKind(LabelledEnum):
    """The promise that covers a device: the SLA engine ranks VIP > annual maintenance > warranty."""

    WARRANTY = ("warranty", "保修", "Warranty")
    ANNUAL_MAINTENANCE = ("annual_maintenance", "年度维保协议", "Annual maintenance agreement")
    VIP_SERVICE = ("vip_service", "VIP服务协议", "VIP service agreement")


class Channel(LabelledEnum):
    """Where a fault report came from."""

    PORTAL = ("portal", "客户门户", "Portal")
    PHONE = ("phone", "电话", "Phone")
    EMAIL = ("email", "邮件", "E-mail")
    WECHAT = ("wechat", "微信", "WeChat")
    API = ("api", "API", "API")
    IOT = ("iot", "物联网报警", "IoT alarm")


class Priority(LabelledEnum):
    """How urgent a ticket is; the SLA engine scales its targets by it."""

    CRITICAL = ("critical", "紧急", "Critical")
    HIGH = ("high", "高", "High")
    NORMAL = ("normal", "普通", "Normal")
    LOW = ("low", "低", "Low")


class Tier(IntEnum):
    """The three-tier response mechanism (三级售后响应机制)."""

    REMOTE = 1
    ONSITE = 2
    HQ = 3

    def label(self, lang: str = "zh") -> str:
        """Human label of the tier in zh or en."""
        return _TIER_LABELS[self][1 if lang == "en" else 0]


_TIER_LABELS = {
    Tier.REMOTE: ("一级 · 远程支持", "Tier 1 · remote support"),
    Tier.ONSITE: ("二级 · 区域工程师上门", "Tier 2 · engineer on site"),
    Tier.HQ: ("三级 · 总部介入", "Tier 3 · headquarters"),
}


class TicketStatus(LabelledEnum):
    """Where a ticket is in its lifecycle; the allowed moves are in ``domain.lifecycle``."""

    NEW = ("new", "新建", "New")
    ACKNOWLEDGED = ("acknowledged", "已受理", "Acknowledged")
    REMOTE_TROUBLESHOOTING = ("remote_troubleshooting", "远程排查中", "Remote troubleshooting")
    AWAITING_DISPATCH = ("awaiting_dispatch", "待派工", "Awaiting dispatch")
    DISPATCHED = ("dispatched", "已派工", "Dispatched")
    ACCEPTED = ("accepted", "工程师已接单", "Accepted")
    EN_ROUTE = ("en_route", "工程师在途", "En route")
    ON_SITE = ("on_site", "工程师已到场", "On site")
    RESOLVED = ("resolved", "已解决(待确认)", "Resolved")
    CLOSED = ("closed", "已闭环", "Closed")
    WAITING_CUSTOMER = ("waiting_customer", "等待客户", "Waiting for customer")
    WAITING_PARTS = ("waiting_parts", "等待备件", "Waiting for parts")
    ESCALATED_HQ = ("escalated_hq", "已升级总部", "Escalated to HQ")
    CANCELLED = ("cancelled", "已取消", "Cancelled")
    REOPENED = ("reopened", "已重开", "Reopened")


OPEN_STATUSES = frozenset(set(TicketStatus) - {TicketStatus.CLOSED, TicketStatus.CANCELLED})
"""Statuses in which someone still owes the customer something."""


class EventKind(LabelledEnum):
    """Kinds of entries in a ticket's append-only timeline."""

    CREATED = ("created", "创建工单", "Ticket created")
    STATUS_CHANGED = ("status_changed", "状态变更", "Status changed")
    TIER_CHANGED = ("tier_changed", "响应级别变更", "Tier changed")
    OWNER_CHANGED = ("owner_changed", "责任人变更", "Owner changed")
    PRIORITY_CHANGED = ("priority_changed", "优先级变更", "Priority changed")
    COMMENT = ("comment", "备注", "Comment")
    CUSTOMER_RESPONSE = ("customer_response", "已回复客户", "Responded to customer")
    HANDOFF_OFFERED = ("handoff_offered", "发起转交", "Hand-off offered")
    HANDOFF_ACCEPTED = ("handoff_accepted", "接受转交", "Hand-off accepted")
    HANDOFF_DECLINED = ("handoff_declined", "拒绝转交", "Hand-off declined")
    HANDOFF_EXPIRED = ("handoff_expired", "转交超时未接受", "Hand-off not accepted in time")
    ASSIGNEE_SET = ("assignee_set", "派工给工程师", "Engineer dispatched")
    SLA_WARNING = ("sla_warning", "SLA 预警", "SLA warning")
    SLA_BREACH = ("sla_breach", "SLA 超时", "SLA breached")
    WATCHER_ADDED = ("watcher_added", "加入关注人", "Watcher added")
    PING_PONG = ("ping_pong", "疑似推诿(扯皮)", "Possible buck-passing")
    TRIAGED = ("triaged", "系统判定", "Triaged")
    REPORT_JOINED = ("report_joined", "重复报修已合并", "Duplicate report joined")
    SELF_SERVICE = ("self_service", "客户自助排查", "Customer self-service")
    ATTACHMENT_ADDED = ("attachment_added", "添加附件", "Attachment added")
    CUSTOMER_MESSAGE = ("customer_message", "客户来信", "Message from customer")
    REMOTE_DIAGNOSIS = ("remote_diagnosis", "总部远程诊断", "HQ remote diagnosis")
    FIRMWARE_UPDATED = ("firmware_updated", "固件升级", "Firmware updated")
    LOANER_SENT = ("loaner_sent", "备机已发出", "Loaner sent")
    LOANER_RETURNED = ("loaner_returned", "备机已归还", "Loaner returned")
    UNIT_REPLACED = ("unit_replaced", "整机调换", "Unit replaced")
    CLAIM_FILED = ("claim_filed", "提交质量索赔", "Quality claim filed")
    CLAIM_STATE_CHANGED = ("claim_state_changed", "质量索赔状态变更", "Quality claim state changed")
    ALARM_RAISED = ("alarm_raised", "设备报警(远程监控)", "Device alarm (remote monitoring)")
    ALARM_CLEARED = ("alarm_cleared", "报警已恢复,建议确认后解决", "Alarm cleared: consider resolving")


CUSTOMER_EVENT_KINDS = frozenset({
    EventKind.CREATED, EventKind.STATUS_CHANGED, EventKind.CUSTOMER_RESPONSE, EventKind.ASSIGNEE_SET,
    EventKind.REPORT_JOINED, EventKind.SELF_SERVICE, EventKind.ATTACHMENT_ADDED, EventKind.CUSTOMER_MESSAGE,
    EventKind.FIRMWARE_UPDATED, EventKind.LOANER_SENT, EventKind.LOANER_RETURNED, EventKind.UNIT_REPLACED,
})
"""The timeline entries a customer reads on its own ticket: where the ticket stands, messages to and from
the customer, the engineer sent, what was done to its device. Everything else (triage evidence, staff
notes, hand-offs and tier moves between staff, SLA bookkeeping, quality claims against the factory) is
internal. A comment is shown to the customer only when a customer user wrote it."""


class InboundStatus(LabelledEnum):
    """What became of a message that arrived on a channel; nothing is ever dropped."""

    TICKETED = ("ticketed", "已建单", "Ticket opened")
    JOINED = ("joined", "已合并到同类未结工单", "Joined an open ticket")
    THREADED = ("threaded", "已归入工单往来", "Added to its ticket")
    REVIEW = ("review", "待人工审核", "Waiting for review")
    DISCARDED = ("discarded", "已人工丢弃", "Discarded by a person")


class OwnerKind(LabelledEnum):
    """An accountable owner is either one named person or one named queue, never nobody."""

    USER = ("user", "个人", "Person")
    QUEUE = ("queue", "队列", "Queue")


class Queue(LabelledEnum):
    """Named work queues that own a ticket until a person takes it."""

    TIER1 = ("tier1", "一线远程支持队列", "Tier-1 remote support queue")
    DISPATCH = ("dispatch", "区域派工队列", "Regional dispatch queue")
    HQ = ("hq", "总部技术支持队列", "HQ support queue")


@dataclass(frozen=True)
class Owner:
    """The single accountable owner of a ticket at one moment (no buck-passing: never empty)."""

    kind: OwnerKind
    user_id: int | None = None
    queue: Queue | None = None
    display: str = ""

    def __post_init__(self) -> None:
        if self.kind is OwnerKind.USER and self.user_id is None:
            raise ValueError("a personal owner needs a user id")
        if self.kind is OwnerKind.QUEUE and self.queue is None:
            raise ValueError("a queue owner needs a queue")

    @classmethod
    def person(cls, user_id: int, display: str = "") -> Owner:
        """An owner who is one named user."""
        return cls(OwnerKind.USER, user_id=user_id, display=display)

    @classmethod
    def of_queue(cls, queue: Queue) -> Owner:
        """An owner who is a named queue."""
        return cls(OwnerKind.QUEUE, queue=queue, display=queue.value)

    def key(self) -> str:
        """A stable text form for timelines and comparisons: ``user:12`` or ``queue:tier1``."""
        if self.kind is OwnerKind.USER:
            return f"user:{self.user_id}"
        assert self.queue is not None
        return f"queue:{self.queue.value}"


def default_queue_for_tier(tier: Tier) -> Queue:
    """Which queue is accountable for a ticket at ``tier`` when no person has taken it."""
    return {Tier.REMOTE: Queue.TIER1, Tier.ONSITE: Queue.DISPATCH, Tier.HQ: Queue.HQ}[tier]
