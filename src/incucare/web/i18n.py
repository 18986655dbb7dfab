"""UI text in zh-CN (default) and English. Code lists carry their own labels (domain/labels.py);
this catalogue holds the page chrome. A missing key shows the key itself, so it is noticed at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LANGUAGES = ("zh", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    "app.name": ("incucare 培养箱售后服务平台", "incucare incubator service"),
    "app.tagline": ("三级售后响应 · 首响2小时 · 24小时上门 · 72小时闭环",
                    "Three-tier response · 2 h first response · 24 h on site · 72 h closure"),
    "nav.tickets": ("工单", "Tickets"),
    "nav.new_ticket": ("报修/新建工单", "New ticket"),
    "nav.devices": ("设备", "Devices"),
    "nav.customers": ("客户", "Customers"),
    "nav.logout": ("退出", "Log out"),
    "nav.switch_lang": ("English", "中文"),
    "login.title": ("登录", "Log in"),
    "login.username": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.failed": ("用户名或密码错误", "Wrong user name or password"),
    "common.search": ("搜索", "Search"),
    "common.filter": ("筛选", "Filter"),
    "common.reset": ("重置", "Reset"),
    "common.all": ("全部", "All"),
    "common.none": ("无", "None"),
    "common.save": ("保存", "Save"),
    "common.previous": ("上一页", "Previous"),
    "common.next": ("下一页", "Next"),
    "common.total": ("共 {total} 条", "{total} in total"),
    "common.page": ("第 {start}–{end} 条", "{start}–{end}"),
    "common.empty": ("没有符合条件的记录", "Nothing matches"),
    "common.yes": ("是", "Yes"),
    "common.no": ("否", "No"),
    "common.open_only": ("仅未闭环", "Open only"),
    "common.back": ("返回", "Back"),
    "common.past_end": ("此页没有记录(已超过最后一页)", "Nothing on this page (past the last page)"),
    "common.first_page": ("回到第一页", "Back to the first page"),
    "common.remove_filter": ("取消此筛选", "Remove this filter"),
    "common.user_n": ("用户 #{id}", "User #{id}"),
    "field.number": ("工单号", "Number"),
    "field.status": ("状态", "Status"),
    "field.tier": ("响应级别", "Tier"),
    "field.priority": ("优先级", "Priority"),
    "field.channel": ("报修渠道", "Channel"),
    "field.customer": ("客户", "Customer"),
    "field.site": ("场地", "Site"),
    "field.device": ("设备", "Device"),
    "field.serial": ("序列号", "Serial"),
    "field.model": ("型号", "Model"),
    "field.owner": ("当前责任人", "Accountable owner"),
    "field.contract": ("服务合同", "Contract"),
    "field.reported_at": ("报修时间", "Reported at"),
    "field.updated_at": ("更新时间", "Updated"),
    "field.description": ("故障描述", "Fault description"),
    "field.reporter": ("报修人", "Reporter"),
    "field.reporter_name": ("报修人姓名", "Reporter name"),
    "field.reporter_phone": ("报修人电话", "Reporter phone"),
    "field.address": ("地址", "Address"),
    "field.kind": ("类型", "Kind"),
    "field.vip": ("VIP", "VIP"),
    "field.install_date": ("安装日期", "Installed"),
    "field.warranty_end": ("保修截止", "Warranty ends"),
    "field.firmware": ("固件版本", "Firmware"),
    "field.sla": ("SLA 目标", "SLA targets"),
    "field.reason": ("原因/说明", "Reason / note"),
    "field.assignee": ("指派给", "Assign to"),
    "field.region": ("区域", "Region"),
    "field.period": ("有效期", "Valid"),
    "field.contacts": ("联系人", "Contacts"),
    "field.code": ("编号", "Code"),
    "sla.first_response": ("首响", "First response"),
    "sla.onsite": ("上门", "On site"),
    "sla.resolution": ("闭环", "Closure"),
    "tickets.title": ("工单列表", "Tickets"),
    "tickets.search_placeholder": ("工单号或描述", "Number or text"),
    "tickets.serial_placeholder": ("设备序列号", "Device serial"),
    "tickets.customer_placeholder": ("客户名称或编号", "Customer name or code"),
    "tickets.mine": ("我的工单", "My tickets"),
    "tickets.customer_filtered": ("仅显示客户", "Only customer"),
    "tickets.customer_none": ("没有与「{text}」匹配的客户", "No customer matches “{text}”"),
    "tickets.customer_pick": ("有多个客户与「{text}」匹配,请选择:", "Several customers match “{text}”; pick one:"),
    "ticket.timeline": ("处理记录", "Timeline"),
    "ticket.actions": ("操作", "Actions"),
    "ticket.move": ("变更状态", "Change status"),
    "ticket.move_to": ("变更为", "Move to"),
    "ticket.choose": ("— 请选择 —", "— choose —"),
    "ticket.assign": ("转交责任人", "Hand over"),
    "ticket.comment": ("添加备注", "Add a note"),
    "ticket.created": ("工单 {number} 已创建", "Ticket {number} created"),
    "ticket.updated": ("工单已更新", "Ticket updated"),
    "ticket.no_contract": ("无有效合同(保外)", "No active contract (out of warranty)"),
    "ticket.final": ("工单已结束", "This ticket is final"),
    "ticket.take_queue": ("或转入队列", "or a queue"),
    "new.title": ("新建工单(报修)", "New ticket"),
    "new.find_device": ("查找设备:输入序列号或客户名称", "Find the device: serial number or customer name"),
    "new.pick": ("选择", "Select"),
    "new.selected": ("已选设备", "Selected device"),
    "new.submit": ("提交工单", "Open ticket"),
    "new.reported_hint": ("电话补录时可填写实际报修时间;留空为现在", "For a call logged later; empty means now"),
    "new.serial_not_found": ("未找到序列号为「{serial}」的设备", "No device with serial “{serial}”"),
    "devices.title": ("设备", "Devices"),
    "device.history": ("服务履历", "Service history"),
    "device.open_ticket": ("为此设备报修", "Report a fault on this device"),
    "device.contracts": ("服务合同", "Contracts"),
    "history.ticket": ("工单", "Ticket"),
    "history.visit": ("上门服务", "Visit"),
    "history.part": ("更换备件", "Part fitted"),
    "history.calibration": ("校准", "Calibration"),
    "history.ticket_ref": ("所属工单", "Ticket"),
    "calibration.setpoint": ("设定值", "Setpoint"),
    "calibration.as_found": ("校准前", "As found"),
    "calibration.as_left": ("校准后", "As left"),
    "calibration.reference": ("标准器", "Reference"),
    "parameter.co2": ("CO2 浓度", "CO2"),
    "parameter.temperature": ("温度", "Temperature"),
    "parameter.o2": ("O2 浓度", "O2"),
    "parameter.humidity": ("湿度", "Humidity"),
    "visit.repair": ("维修", "Repair"),
    "visit.inspection": ("巡检", "Inspection"),
    "visit.installation": ("安装", "Installation"),
    "visit.calibration": ("校准", "Calibration"),
    "visit.preventive": ("预防性维护", "Preventive maintenance"),
    "customers.title": ("客户", "Customers"),
    "customer.devices": ("设备", "Devices"),
    "customer.sites": ("场地", "Sites"),
    "customer.tickets": ("最近工单", "Recent tickets"),
    "error.title": ("出错了", "Something went wrong"),
    "error.not_found": ("未找到该记录", "Not found"),
    "error.forbidden": ("您没有执行此操作的权限", "You may not do this"),
    "error.csrf": ("页面已过期,请刷新后重试", "The page expired; reload and try again"),
    "error.invalid_choice": ("选项无效: {detail}", "Invalid choice: {detail}"),
    "minutes": ("{n} 分钟", "{n} min"),
    "hours": ("{n} 小时", "{n} h"),
}


def translate_or(lang: str, key: str, fallback: str) -> str:
    """The text for ``key``, or ``fallback`` when the catalogue has none: for codes stored in the data
    (a calibration parameter, a visit kind) whose list may grow before the catalogue does."""
    return translate(lang, key) if key in MESSAGES else fallback


def translate(lang: str, key: str, **values: Any) -> str:
    """The text for ``key`` in ``lang`` with ``{placeholders}`` filled in."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def translator(lang: str) -> Callable[..., str]:
    """A ``t(key, **values)`` function bound to one language, for templates."""
    return lambda key, **values: translate(lang, key, **values)


def pick_language(query: str | None, cookie: str | None, default: str = "zh") -> str:
    """An explicit choice (``?lang=``) wins, then the remembered cookie, then the default (Chinese)."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return default
