"""The screens' words in Simplified Chinese (zh-CN) and English.

Every key has both languages (a test checks). Reason codes (docs/policy.md) map to plain
language a person at the gate understands, plus what to do next. The default language comes
from ``site.language``; each screen can switch with ``?lang=``.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")

# key -> (zh-CN, en)
_S: dict[str, tuple[str, str]] = {
    # --- kiosk: prompts ---
    "kiosk.title": ("测温与通行核验", "Temperature and pass check"),
    # Engine prompt keys (kiosk.engine.PROMPTS), one per screen state.
    "prompt.show_pass": ("请出示通行码", "Please show your pass QR code"),
    "prompt.step_up": ("请将手腕靠近测温处", "Hold your wrist to the thermometer"),
    "prompt.measure_wrist": (
        "已识别通行码，请将手腕靠近测温处",
        "Code read. Hold your wrist to the thermometer",
    ),
    "prompt.measuring": ("正在测温，请保持不动", "Measuring, hold still"),
    "prompt.measure_again": (
        "请再测一次，将手腕靠近测温处",
        "Once more: hold your wrist to the thermometer",
    ),
    "prompt.show_pass_now": ("请出示通行码", "Now show your pass QR code"),
    "prompt.checking": ("正在核验…", "Checking…"),
    "prompt.pass": ("请通行", "Please go through"),
    "prompt.deny": ("禁止通行", "Access denied"),
    "prompt.see_guard": ("禁止通行，请到保安处", "Access denied: please see the guard"),
    "prompt.out_of_order": (
        "请到保安处人工测温登记",
        "Please see the guard for a manual check",
    ),
    "prompt.stop": ("请止步", "Please stop here"),
    "result.pass": ("通过", "PASS"),
    "result.deny": ("禁止通行", "DENIED"),
    "result.manual_pass": ("保安放行", "PASS (guard)"),
    "result.manual_deny": ("保安拒绝", "DENIED (guard)"),
    "result.fault": ("设备故障", "DEVICE FAULT"),
    "result.remeasure": ("请重新测温", "MEASURE AGAIN"),
    "kiosk.fault_next": (
        "请到保安处人工测温登记",
        "Please see the guard for a manual check",
    ),
    "kiosk.out_of_service": ("暂停使用", "OUT OF SERVICE"),
    "kiosk.temp": ("体温", "Temperature"),
    "kiosk.gate_open": ("门已打开", "Gate open"),
    "kiosk.gate_closes": ("请在 {s} 秒内通过", "go through within {s} s"),
    "kiosk.preview": ("扫码画面", "Camera preview"),
    "kiosk.preview_off": ("请将通行码对准此处", "Hold your pass QR code here"),
    "kiosk.hello": ("{name}，您好", "Hello, {name}"),
    "kiosk.dir.in": ("进入", "Entering"),
    "kiosk.dir.out": ("外出", "Leaving"),
    "kiosk.sound_on": ("点击开启声音", "Tap to turn sound on"),
    "kiosk.offline_next": (
        "正在重新连接，请稍候或到保安处登记",
        "Reconnecting: please wait or see the guard",
    ),
    "kiosk.wrist_picture": ("手腕测温位置示意图", "Where to hold your wrist"),
    "kiosk.language": ("English", "中文"),
    "kiosk.offline": ("连接中断", "CONNECTION LOST"),
    "banner.lists_stale": (
        "名单已 {hours} 小时未更新",
        "Lists not updated for {hours} h",
    ),
    "banner.lists_never": ("名单从未更新", "Lists have never been updated"),
    "banner.device_fault": ("设备故障：{device}", "Device fault: {device}"),
    "banner.clock_unsynced": ("时钟未同步", "Clock not synchronised"),
    "banner.not_deciding": (
        "自助通行已暂停，请到保安处登记",
        "Self check paused — please call the guard",
    ),
    # --- devices ---
    "device.thermometer": ("测温仪", "thermometer"),
    "device.reader": ("扫码器", "code reader"),
    "device.readers": ("扫码器", "code readers"),
    "device.source.camera": ("摄像头", "camera"),
    "device.source.scanner": ("扫码枪", "scanner"),
    "device.gate": ("闸门", "gate"),
    "device.store": ("记录存储", "event store"),
    "device.clock": ("时钟", "clock"),
    "device.disk": ("存储空间", "disk space"),
    "device.last_event": ("最近一条记录", "last event"),
    "health.ok": ("正常", "OK"),
    "health.degraded": ("部分异常", "Degraded"),
    "health.fault": ("故障", "Fault"),
    "health.absent": ("未接入", "Absent"),
    "health.unknown": ("未知", "Unknown"),
    # --- guard: chrome ---
    "guard.title": ("保安控制台", "Guard console"),
    "nav.live": ("实时", "Live"),
    "nav.register": ("登记", "Register"),
    "nav.passes": ("通行证", "Passes"),
    "nav.lists": ("名单", "Lists"),
    "nav.stats": ("统计", "Statistics"),
    "nav.health": ("设备", "Devices"),
    "nav.calibration": ("测温校准", "Calibration"),
    "nav.community": ("社区", "Community"),
    "nav.logout": ("退出登录", "Log out"),
    "guard.signed_in_as": ("当前用户：{name}（{role}）", "Signed in: {name} ({role})"),
    "role.guard": ("保安", "guard"),
    "role.admin": ("管理员", "admin"),
    "login.title": ("保安登录", "Guard sign-in"),
    "login.name": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码错误", "Wrong user name or password"),
    "login.limited": (
        "尝试次数过多，请 {s} 秒后再试",
        "Too many attempts; try again in {s} s",
    ),
    "login.expired": ("登录页面已过期，请重试", "The form expired; please try again"),
    "login.logged_out": ("已退出登录", "You are signed out"),
    # --- guard: the shift's session ends visibly (issue 17) ---
    "session.ends_in": (
        "本班登录将在 {m} 分钟后到期，到期后需重新登录",
        "Your shift's sign-in ends in {m} min; then sign in again",
    ),
    "session.ended": (
        "登录已到期，请重新登录；未完成的操作会在登录后继续",
        "Your sign-in has ended: sign in again; an unfinished action continues after",
    ),
    "session.sign_in_again": ("重新登录", "Sign in again"),
    "session.ended_resume": (
        "登录已到期。请重新登录，刚才的操作将在登录后完成。",
        "Your sign-in ended. Sign in again and the action you started will complete.",
    ),
    "session.resume_title": ("继续刚才的操作", "Completing the action you started"),
    "session.resume_auto": (
        "已重新登录，正在完成刚才的操作…",
        "Signed in again: completing your action…",
    ),
    "session.resume_click": (
        "已重新登录。此操作会开门，请确认人员仍在现场后再继续。",
        "Signed in again. This opens the gate: check the person is still there, then continue.",
    ),
    "session.resume_go": ("继续完成", "Complete it"),
    "err.unauthenticated": ("请先登录", "Please sign in first"),
    "err.forbidden": ("无权执行此操作", "You are not allowed to do this"),
    "err.csrf": (
        "无法确认请求来源，操作未执行",
        "Request origin could not be verified; refused",
    ),
    "err.bad_input": ("输入有误：{detail}", "Input problem: {detail}"),
    "err.required": ("请填写{field}", "{field} is required"),
    "err.too_long": ("{field}最多 {n} 个字符", "{field}: at most {n} characters"),
    "err.control": ("{field}含有无效字符", "{field} contains invalid characters"),
    "err.number": ("{field}应为数字", "{field} must be a number"),
    "err.whole": ("{field}应为整数", "{field} must be a whole number"),
    "err.range": ("{field}应在 {lo} 到 {hi} 之间", "{field} must be between {lo} and {hi}"),
    "err.choice": ("{field}只能是：{options}", "{field} must be one of: {options}"),
    "err.date": ("{field}应为日期（年-月-日）", "{field} must be a date (YYYY-MM-DD)"),
    "err.phone": ("电话号码格式不正确", "The phone number must contain digits"),
    "err.no_alarm": ("该警报不存在或已处理", "No such open alarm"),
    "err.no_key": ("本机未配置签发密钥", "No issuing key on this kiosk"),
    "err.no_calibration": ("暂无可配对的测温记录", "No kiosk reading to pair with"),
    "err.unavailable": ("此功能暂不可用：{detail}", "Not available: {detail}"),
    "ok.done": ("已完成", "Done"),
    # --- guard: live ---
    "live.alarms": ("警报", "Alarms"),
    "live.no_alarms": ("当前无警报", "No open alarms"),
    "live.ack": ("已处理", "Done"),
    "live.acked_by": ("已由 {name} 处理", "Acknowledged by {name}"),
    "live.feed": ("通行记录", "Decisions"),
    "live.no_events": ("暂无记录", "No decisions yet"),
    "live.time": ("时间", "Time"),
    "live.decision": ("结果", "Decision"),
    "live.reason": ("原因", "Reason"),
    "live.temp": ("体温", "Temp."),
    "live.direction": ("方向", "Dir."),
    "live.who": ("人员", "Who"),
    "live.operator": ("操作人", "Operator"),
    "live.current": ("闸口当前状态", "Now at the gate"),
    "live.sound_on": ("开启警报提示音", "Turn alarm sound on"),
    "alarm.fever": ("发热", "Fever"),
    "alarm.quarantine": ("隔离住户外出", "Quarantine breach"),
    "alarm.forged": ("通行证无效", "Forged pass"),
    "alarm.device": ("设备故障", "Device fault"),
    "alarm.other": ("其他警报", "Alarm"),
    # --- guard: alarms say who, what and what was done (issue 17) ---
    "alarm.foreign": ("非本小区通行证", "Pass from another compound"),
    "alarm.guard": ("需要保安处理", "Guard needed"),
    "alarm.quarantine_breach": ("隔离期间外出", "Going out during quarantine"),
    "alarm.quarantine_return": ("隔离户返回", "Quarantined household returning"),
    "alarm.forged_pass": ("通行证无效，请核验", "Invalid pass: check it"),
    "alarm.guard_needed": ("需要保安处理", "Guard needed"),
    "alarm.times": ("共 {n} 次", "{n} times"),
    "alarm.passage": ("通行记录 #{seq}", "Passage #{seq}"),
    "live.resolution": ("处理结果", "Outcome"),
    "live.close_selected": ("所选警报已处理", "Close selected alarms"),
    "resolution.handled": ("已处理", "Handled"),
    "resolution.sent_home": ("人工复测确认，已劝返", "Confirmed by hand, sent home"),
    "resolution.false_alarm": ("误报", "False alarm"),
    "resolution.escalated": ("已上报", "Escalated"),
    "err.resolution": ("请选择处理结果", "Choose an outcome"),
    "manual.title": ("人工放行 / 拒绝", "Manual pass / deny"),
    "manual.pass": ("人工放行", "Manual pass"),
    "manual.deny": ("人工拒绝", "Manual deny"),
    "manual.reason": ("原因（必填）", "Reason (required)"),
    "manual.direction": ("方向", "Direction"),
    # --- guard: whom a manual decision is about (issue 17) ---
    "manual.subject": ("本次操作的对象（必选）", "This decision is about (choose one)"),
    "manual.subject_last": ("上一位通行者：{text}", "The last passage: {text}"),
    "manual.subject_none": (
        "无通行证人员（不关联任何记录）",
        "A person without a pass (no record)",
    ),
    "manual.subject_changed": (
        "有新的通行记录，请重新选择对象",
        "A new passage came: choose again",
    ),
    "manual.unknown_person": ("身份不明", "unknown person"),
    "manual.no_pass_person": ("无通行证人员", "a person without a pass"),
    "manual.hand_temp": ("人工测温（°C，选填）", "Hand-measured temperature (°C, optional)"),
    "manual.confirm_pass": (
        "将对【{who}】人工放行，门将打开。原因：{reason}",
        "Manual PASS for [{who}]: the gate opens. Reason: {reason}",
    ),
    "manual.confirm_deny": (
        "将对【{who}】人工禁止通行。原因：{reason}",
        "Manual DENY for [{who}]. Reason: {reason}",
    ),
    "manual.confirm": ("确认", "Confirm"),
    "manual.cancel": ("取消", "Cancel"),
    "manual.by_hand": ("人工测温", "by hand"),
    "manual.about": ("针对 #{seq}", "about #{seq}"),
    "err.subject": ("请选择本次操作的对象", "Choose whom this decision is about"),
    "err.subject_gone": (
        "所选通行记录不存在或已过期，请重新选择",
        "That passage is gone or too old: choose again",
    ),
    "dir.in": ("进入", "in"),
    "dir.out": ("外出", "out"),
    # --- guard: registration ---
    "reg.person": ("人员登记（无手机）", "Register a person (no phone)"),
    "reg.vehicle": ("车辆登记", "Register a vehicle"),
    "reg.name": ("姓名", "Name"),
    "reg.phone": ("电话（可选）", "Phone (optional)"),
    "reg.id_number": ("证件号（可选）", "ID number (optional)"),
    "reg.unit": ("户号", "Dwelling visited"),
    "reg.reason": ("事由", "Reason for visit"),
    "reg.temp": ("人工测温（°C）", "Hand-measured temp. (°C)"),
    "reg.decision": ("处理", "Decision"),
    "reg.plate": ("车牌", "Plate"),
    "reg.driver": ("司机", "Driver"),
    "reg.occupants": ("随车人数（不含司机）", "Passengers (besides the driver)"),
    "reg.submit": ("登记并记录", "Register and record"),
    "reg.recent": ("今日登记", "Registered today"),
    "reg.fever_refused": (
        "体温 {t} °C 达到发热标准，不能登记为放行：请复测；仍发热请按下方“登记为禁止通行”",
        "{t} °C is a fever, so not a pass: re-measure; if still feverish press “Record as denied”"
        " below",
    ),
    "reg.fever_denied": (
        "体温 {t} °C 达到发热标准，已记录为人工拒绝",
        "{t} °C is a fever; recorded as denied",
    ),
    "reg.driver_temp": ("司机体温（°C）", "Driver's temperature (°C)"),
    "reg.passenger": ("乘客姓名", "Passenger's name"),
    "reg.passenger_temp": ("乘客体温（°C）", "Passenger's temperature (°C)"),
    "reg.passengers": ("随车乘客", "Passengers"),
    "reg.add_passenger": ("增加乘客", "Add a passenger"),
    "reg.vehicle_fever": (
        "{who} 达到发热标准，本车不能登记为放行：请复测；仍发热请按下方“登记为禁止通行”",
        "{who}: a fever, so the vehicle is not a pass: re-measure; if still feverish press"
        " “Record as denied” below",
    ),
    "reg.record_deny": ("登记为禁止通行", "Record as denied"),
    "reg.people_temps": ("车上人员与体温", "People in the car and temperatures"),
    "reg.plate_resident": ("本小区车辆（户号 {h}）", "Resident's car (dwelling {h})"),
    "reg.plate_unknown": ("非本小区登记车辆", "Not a registered resident vehicle"),
    "reg.plate_no_list": ("未导入本小区车辆名单", "No resident-vehicle list imported"),
    "reg.find": ("查找以前的访客", "Find an earlier visitor"),
    "reg.find_hint": ("姓名或手机尾号", "Name or last digits of the phone"),
    "reg.find_submit": ("查找", "Find"),
    "reg.found_none": ("没有找到以前的登记", "No earlier registration found"),
    "reg.use": ("填入", "Use"),
    "reg.copy_from": ("以前的登记", "Earlier registration"),
    "reg.copied": (
        "电话和证件号沿用 {when} 的登记（可改）",
        "Phone and ID number from the registration of {when} (may be changed)",
    ),
    "err.no_visitor": ("没有这条以前的登记", "No such earlier registration"),
    # --- guard: passes ---
    "pass.issue": ("签发通行证", "Issue a pass"),
    "pass.household": ("户号", "Household"),
    "pass.holder": ("持证人", "Holder"),
    "pass.role": ("身份", "Role"),
    "pass.days": ("有效天数", "Valid days"),
    "pass.submit": ("签发", "Issue"),
    "pass.print": ("打印", "Print"),
    "pass.no_key": (
        "本机未配置签发密钥，无法签发",
        "No issuing key on this kiosk; passes cannot be issued here",
    ),
    "pass.issued": ("已签发通行证", "Pass issued"),
    "pass.valid_until": ("有效期至 {d}", "Valid until {d}"),
    "pass.role.resident": ("居民", "resident"),
    "pass.role.visitor": ("访客", "visitor"),
    "pass.role.staff": ("工作人员", "staff"),
    "pass.role.delivery": ("快递/外卖", "delivery"),
    "pass.list": ("本机签发的通行证", "Passes issued here"),
    "pass.search_hint": ("持证人、户号或通行证编号", "Holder, dwelling or pass number"),
    "pass.search": ("查找", "Search"),
    "pass.issued_at": ("签发时间", "Issued"),
    "pass.issued_by": ("签发人", "Issued by"),
    "pass.status": ("状态", "Status"),
    "pass.status.valid": ("有效", "valid"),
    "pass.status.expired": ("已过期", "expired"),
    "pass.status.revoked": ("已挂失或作废", "lost or void"),
    "pass.revoke": ("挂失作废", "Void (lost)"),
    "pass.reprint": ("补打", "Reprint"),
    "pass.pick": ("选择", "Select"),
    "pass.print_selected": ("打印所选通行证", "Print the selected passes"),
    "pass.none_issued": ("没有符合的通行证", "No matching pass"),
    "pass.cards": ("待打印的通行证（{n} 张）", "Passes to print ({n})"),
    "pass.lost": ("遗失", "lost"),
    "pass.none_selected": ("请先勾选要打印的通行证", "Select the passes to print first"),
    "pass.batch_too_big": ("一次最多打印 {n} 张", "At most {n} cards at a time"),
    "pass.not_found": ("本机没有这张通行证的签发记录", "No issue record of this pass here"),
    "pass.revoked_no_print": ("已挂失或作废的通行证不能补打", "A void pass is not reprinted"),
    "pass.other_key": (
        "此通行证由另一把签发密钥签发，不能在本机补打",
        "Signed with another issuing key: cannot be reprinted here",
    ),
    "pass.cannot_reprint": ("签发记录不完整，不能补打", "Incomplete issue record: cannot reprint"),
    "confirm.title": ("请确认", "Please confirm"),
    "confirm.yes": ("确认", "Confirm"),
    "confirm.no": ("取消", "Cancel"),
    "confirm.revoke": (
        "将通行证 {id}（持证人 {holder}，户号 {household}）挂失作废？作废后凭此通行证不能再通行。",
        "Void pass {id} (holder {holder}, dwelling {household})? It will no longer open the gate.",
    ),
    "confirm.revoke_id": (
        "将通行证 {id} 挂失作废？作废后凭此通行证不能再通行。",
        "Void pass {id}? It will no longer open the gate.",
    ),
    "confirm.unrevoke": (
        "恢复通行证 {id}？恢复后凭此通行证可以再次通行。",
        "Restore pass {id}? It will open the gate again.",
    ),
    "confirm.quarantine_remove": (
        "解除户号 {household}（{who}）的居家隔离？解除后闸机不再因此拦截。",
        "End the quarantine of {household} ({who})? The gate will no longer stop them for it.",
    ),
    "confirm.household_remove": (
        "删除户号 {household} 的登记？",
        "Remove dwelling {household} from the list?",
    ),
    "lists.no_entry": ("名单中没有这一条", "No such entry on the list"),
    "lists.revoke_hint": (
        "挂失：在“通行证”页面按持证人或户号查找，无需输入编号",
        "To void a lost pass, find it by holder or dwelling on the Passes page: no number to type",
    ),
    "stats.unknown_plates": ("非本小区登记车辆", "Unregistered vehicles"),
    # --- guard: lists ---
    "lists.quarantine": ("居家隔离", "Quarantine"),
    "lists.revocations": ("已挂失或作废的通行证", "Revoked passes"),
    "lists.households": ("住户", "Households"),
    "lists.add": ("添加", "Add"),
    "lists.remove": ("移除", "Remove"),
    "lists.subject": ("户号或持证人", "Household or holder"),
    "lists.kind": ("类型", "Kind"),
    "lists.kind.household": ("整户", "household"),
    "lists.kind.holder": ("个人", "holder"),
    "lists.from": ("开始日期", "From"),
    "lists.until": ("结束日期", "Until"),
    "lists.note": ("备注", "Note"),
    "lists.pass_id": ("通行证编号", "Pass id"),
    "lists.by": ("操作人", "By"),
    "lists.when": ("时间", "When"),
    "lists.empty": ("无", "None"),
    "lists.freshness": ("名单更新于 {when}（{source}）", "Lists updated {when} ({source})"),
    "lists.unit": ("户号", "Unit"),
    "lists.title": ("名单", "List"),
    "lists.residents": ("居住人数", "Residents"),
    "lists.observation": ("健康观察截止", "Observation until"),
    "lists.source": ("来源", "Source"),
    "lists.reason": ("原因", "Reason"),
    "lists.holder_hint": ("留空表示整户", "Leave empty for the whole household"),
    "lists.stale": ("名单已 {hours} 小时未更新", "Lists not updated for {hours} h"),
    "lists.quota": ("外出配额", "Exit quota"),
    # --- guard: stats ---
    "stats.title": ("统计", "Statistics"),
    "stats.day": ("日期", "Day"),
    "stats.show": ("查看", "Show"),
    "stats.passes": ("通过", "Passes"),
    "stats.denies": ("拒绝", "Denies"),
    "stats.manual": ("人工处理", "Manual"),
    "stats.fevers": ("发热", "Fevers"),
    "stats.total": ("合计", "Total"),
    "stats.by_reason": ("拒绝原因", "Denies by reason"),
    "stats.per_hour": ("每小时通行人次", "Flow per hour"),
    "stats.temp_hist": ("体温分布", "Temperature distribution"),
    "stats.fever_list": ("发热警报时间", "Fever alarms"),
    "stats.no_fever": ("当天无发热警报", "No fever this day"),
    "stats.directions": ("进出人次", "Passages by direction"),
    "stats.exits": ("各户外出次数 / 配额", "Exits per household vs quota"),
    "stats.export": ("导出表格", "Export table"),
    "stats.no_data": ("当天没有数据", "No data for this day"),
    "stats.hour": ("时", "hour"),
    "stats.people": ("人次", "passages"),
    "stats.quota_line": ("配额", "quota"),
    "stats.exits_summary": (
        "外出住户 {households} 户，超出配额 {over} 户（横轴：外出次数，纵轴：户数）",
        "{households} households went out, {over} over the quota (x: exits, y: households)",
    ),
    "stats.registrations": ("人员登记", "Registrations"),
    "stats.vehicles": ("车辆登记", "Vehicles"),
    "stats.quarantined": ("居家隔离户数", "Quarantined households"),
    "stats.export_xlsx": ("导出电子表格", "Export table (Excel)"),
    "stats.export_csv": ("导出表格（逗号分隔）", "Export table (comma-separated)"),
    "export.time": ("时间", "Time"),
    "export.gate": ("闸机", "Gate"),
    "export.direction": ("方向", "Direction"),
    "export.kind": ("类型", "Type"),
    "export.kind.passage": ("闸机通行", "gate passage"),
    "export.kind.manual": ("保安处理", "guard's decision"),
    "export.kind.registration": ("人员登记", "registration"),
    "export.kind.vehicle": ("车辆登记", "vehicle"),
    "export.decision": ("结果", "Result"),
    "export.reasons": ("原因", "Reasons"),
    "export.temp": ("体温（°C）", "Temperature (°C)"),
    "export.household": ("户号", "Dwelling"),
    "export.name": ("姓名", "Name"),
    "export.phone": ("电话", "Phone"),
    "export.plate": ("车牌", "Plate"),
    "export.occupants": ("车上人员与体温", "People in the car and temperatures"),
    "export.note": ("事由或备注", "Reason or note"),
    "export.operator": ("操作保安", "Guard"),
    "export.pass_id": ("通行证编号", "Pass number"),
    "export.sheet_summary": ("当日统计", "Day figures"),
    "export.sheet_events": ("通行记录", "Passages"),
    "export.reason_row": ("拒绝原因：{r}", "Denied: {r}"),
    # --- guard: health ---
    "health.title": ("设备状态", "Device health"),
    "health.device": ("设备", "Device"),
    "health.state": ("状态", "State"),
    "health.detail": ("详情", "Detail"),
    "health.deciding": ("自助通行正常", "Deciding automatically"),
    "health.not_deciding": ("自助通行已暂停", "Not deciding automatically"),
    "health.free_mb": ("剩余 {mb} MB", "{mb} MB free"),
    # --- guard: calibration ---
    "cal.title": ("测温校准", "Thermometer calibration"),
    "cal.help": (
        "用医用体温计测量同一人，并记录测温仪读数。",
        "Measure the same person with a clinical thermometer and note the kiosk reading.",
    ),
    "cal.reference": ("医用体温计读数（°C）", "Clinical thermometer °C"),
    "cal.kiosk": ("测温仪读数（°C）", "Kiosk reading °C"),
    "cal.object": ("皮肤表面温度（°C）", "Kiosk object (skin) °C"),
    "cal.ambient": ("环境温度（°C）", "Kiosk ambient °C"),
    "cal.last": (
        "最近一次测温：{when}，估算 {body} °C（表面 {obj} °C，环境 {amb} °C）",
        "Last kiosk reading: {when}, estimated {body} °C (skin {obj} °C, ambient {amb} °C)",
    ),
    "cal.model": (
        "当前校准：偏移 {offset} °C，增益 {gain}，计算于 {when}",
        "Current model: offset {offset} °C, gain {gain}, fitted {when}",
    ),
    "cal.default_model": ("当前使用出厂默认校准", "Using the default model (not fitted)"),
    "cal.fit_hint": (
        "记录足够数据后，请管理员完成校准计算。",
        "When enough pairs are recorded, an admin runs `kiosk calibrate fit`.",
    ),
    "cal.points": ("已记录的数据", "Recorded pairs"),
    "cal.residual": ("偏差（°C）", "Residual °C"),
    "cal.when": ("时间", "When"),
    "cal.submit": ("记录", "Record"),
    "cal.saved": ("已记录校准数据", "Calibration point recorded"),
    # --- decisions ---
    "decision.pass": ("通过", "pass"),
    "decision.deny": ("拒绝", "deny"),
    "decision.manual_pass": ("人工放行", "manual pass"),
    "decision.manual_deny": ("人工拒绝", "manual deny"),
    "kind.registration": ("登记", "registration"),
    "kind.vehicle": ("车辆", "vehicle"),
}

# reason code -> (zh, en) plain words for the person; what to do is in _NEXT.
_REASONS: dict[str, tuple[str, str]] = {
    "ok": ("核验通过", "All checks passed"),
    "fever": ("体温偏高", "Temperature too high"),
    "temp_implausible": ("未测到有效体温", "Temperature reading implausible"),
    "no_temperature": ("未测到体温", "No temperature measured"),
    "sensor_fault": ("测温仪故障", "Thermometer fault"),
    "reader_fault": ("扫码器故障", "Code reader fault"),
    "pass_malformed": ("无法识别此通行码", "Code not recognised"),
    "pass_bad_signature": ("通行证无效", "Pass is not genuine"),
    "pass_unknown_key": ("非本小区通行证", "Pass from an unknown issuer"),
    "pass_expired": ("通行证已过期", "Pass has expired"),
    "pass_not_yet_valid": ("通行证尚未生效", "Pass not valid yet"),
    "pass_revoked": ("通行证已挂失或作废", "Pass has been revoked"),
    "quarantined": ("居家隔离期内", "Home quarantine in force"),
    "quota_exceeded": ("本户本期外出次数已用完", "Household exit quota used up"),
    "passback": ("重复刷码", "Pass already used this way"),
    "outside_hours": ("当前不在通行时段", "Outside opening hours"),
    "store_fault": ("存储故障，无法记录", "Event log fault"),
    "no_guard_on_duty": ("现在无保安值守", "No guard on duty now"),
    "under_observation": ("居家观察期间", "Home observation in force"),
    "guard_override": ("保安人工处理", "Decided by the guard"),
    "no_pass": ("未出示通行码", "No pass shown"),
    "gate_fault": ("闸门故障", "Gate fault"),
    "timeout": ("等待超时", "Timed out"),
}

# reason code -> (zh, en) where the person at the gate is addressed differently from the guard's
# feed ("您家…" to the resident, a neutral label for the guard).
_TO_PERSON: dict[str, tuple[str, str]] = {
    "quarantined": ("您家正处于居家隔离期", "Your household is in home quarantine"),
    "passback": ("请勿重复刷码", "Pass already used this way"),
}

_NEXT: dict[str, tuple[str, str]] = {
    "fever": ("请在旁等候，保安将为您复测", "Please wait aside; a guard will re-check you"),
    "temp_implausible": (
        "请摘下手套，露出手腕后重新测温",
        "Remove gloves and hold your bare wrist closer",
    ),
    "no_temperature": ("请将手腕靠近测温处后重新测温", "Hold your wrist at the sensor"),
    "pass_malformed": ("请出示本小区的通行码", "Show this compound's pass code"),
    "pass_expired": ("请到物业办理新的通行证", "Ask the office for a new pass"),
    "pass_revoked": ("请到物业办理", "Please contact the office"),
    "pass_bad_signature": ("请到保安处核验", "Please see the guard"),
    "pass_unknown_key": ("请到保安处登记", "Please see the guard"),
    "quarantined": ("请返回家中；如有需要，请联系物业", "Please return home; call the office"),
    "quota_exceeded": ("如有急事，请到保安处说明", "If it is urgent, please see the guard"),
    "outside_hours": ("请在通行时段内再来", "Please come back during opening hours"),
    "pass_not_yet_valid": ("请在通行证生效后再来", "Please come back once the pass is valid"),
    "no_guard_on_duty": (
        "请联系物业，或在值守时间再来",
        "Please call the office or come back when a guard is on duty",
    ),
    "under_observation": (
        "观察期间请留在家中，如有需要请联系物业",
        "Please stay home while under observation; call the office if you need anything",
    ),
}

#: What to do after ``no_guard_on_duty`` when the site says where to call (``policy.hours.call``).
_CALL: tuple[str, str] = (
    "现在无保安值守，请致电：{call}",
    "No guard on duty now: please call {call}",
)

DEFAULT_ROLE_LABEL = "guard"


def pick_lang(requested: str | None, default: str) -> Lang:
    """The language to use: ``requested`` when supported, else the configured default."""
    if requested in LANGS:
        return requested  # type: ignore[return-value]
    if requested and requested.lower().startswith("zh"):
        return "zh-CN"
    if requested and requested.lower().startswith("en"):
        return "en"
    return default if default in LANGS else "zh-CN"  # type: ignore[return-value]


def _idx(lang: str) -> int:
    return 0 if lang == "zh-CN" else 1


def t(lang: str, key: str, **params: object) -> str:
    """The text of ``key`` in ``lang``; an unknown key raises ``KeyError`` (caught by tests)."""
    text = _S[key][_idx(lang)]
    return text.format(**params) if params else text


def reason_text(lang: str, code: str) -> str:
    """Plain words for a reason code; an unknown code is shown as itself, never hidden."""
    pair = _REASONS.get(code)
    return pair[_idx(lang)] if pair else code


def reason_for_person(lang: str, code: str) -> str:
    """A reason as the kiosk says it to the person at the gate."""
    pair = _TO_PERSON.get(code)
    return pair[_idx(lang)] if pair else reason_text(lang, code)


def reason_next(lang: str, code: str, call: str = "") -> str | None:
    """What the person should do after a deny for ``code`` (None: nothing to add); with no
    guard on duty, where to ``call`` when the site configured it."""
    if code == "no_guard_on_duty" and call.strip():
        return _CALL[_idx(lang)].format(call=call.strip())
    pair = _NEXT.get(code)
    return pair[_idx(lang)] if pair else None


def reasons_text(lang: str, codes: list[str] | tuple[str, ...]) -> str:
    sep = "；" if lang == "zh-CN" else "; "
    return sep.join(reason_text(lang, c) for c in codes if c != "ok") or reason_text(lang, "ok")


def catalog(lang: str, prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """All strings of ``lang`` (optionally only keys with one of ``prefixes``), for the JS."""
    i = _idx(lang)
    out = {k: v[i] for k, v in _S.items() if not prefixes or k.startswith(prefixes)}
    for code, pair in _REASONS.items():
        out["reason." + code] = pair[i]
    for code, pair in _NEXT.items():
        out["next." + code] = pair[i]
    return out


def keys() -> list[str]:
    return list(_S)


def has(key: str) -> bool:
    return key in _S


def reason_codes() -> list[str]:
    return list(_REASONS)


def translator(lang: str):
    """A ``_(key, **params)`` function bound to ``lang``, for templates."""

    def _(key: str, **params: object) -> str:
        return t(lang, key, **params)

    return _
