"""Fixed word lists behind the demo data: regions, cities and streets, names, models, faults and parts.

Kept apart from the loader so the lists can grow without touching the simulation. Organisation names
built from these lists are invented; only city, district, road and university names are real.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("north", "华北区", "North China", ("北京市", "天津市", "河北省", "山西省", "内蒙古自治区")),
    ("east", "华东区", "East China", ("上海市", "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省")),
    ("south", "华南区", "South China", ("广东省", "广西壮族自治区", "海南省")),
    ("central", "华中区", "Central China", ("河南省", "湖北省", "湖南省")),
    ("southwest", "西南区", "Southwest China", ("重庆市", "四川省", "贵州省", "云南省", "西藏自治区")),
    ("northwest", "西北区", "Northwest China",
     ("陕西省", "甘肃省", "青海省", "宁夏回族自治区", "新疆维吾尔自治区")),
    ("northeast", "东北区", "Northeast China", ("辽宁省", "吉林省", "黑龙江省")),
)
"""(code, name_zh, name_en, provinces as cpca spells them): the 31 mainland provinces, each once."""


@dataclass(frozen=True)
class City:
    """A city customers sit in: real districts and roads, so addresses geocode to the right district."""

    province: str
    name: str
    area_code: str
    weight: int
    districts: tuple[tuple[str, tuple[str, ...]], ...]
    universities: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The city name without 市, as people write it in organisation names."""
        return self.name.removesuffix("市")

    @property
    def prefix(self) -> str:
        """Province and city as written at the start of an address (once for municipalities)."""
        return self.name if self.province == self.name else f"{self.province}{self.name}"


CITIES: tuple[City, ...] = (
    City("北京市", "北京市", "010", 24, (
        ("海淀区", ("学院路", "中关村南大街", "北三环西路")), ("东城区", ("东单北大街", "帅府园胡同")),
        ("朝阳区", ("建国路", "酒仙桥路")), ("西城区", ("西直门南大街",)), ("丰台区", ("南四环西路",)),
    ), ("北京大学", "清华大学", "中国农业大学", "北京师范大学")),
    City("天津市", "天津市", "022", 8, (
        ("南开区", ("卫津路", "复康路")), ("滨海新区", ("第三大街", "泰达大街")), ("河西区", ("友谊路",)),
        ("和平区", ("鞍山道",)),
    ), ("南开大学", "天津大学", "天津医科大学")),
    City("河北省", "石家庄市", "0311", 5, (("长安区", ("中山东路",)), ("裕华区", ("槐安东路", "体育南大街"))),
         ("河北医科大学",)),
    City("河北省", "保定市", "0312", 2, (("竞秀区", ("东风西路",)),), ("河北大学",)),
    City("河北省", "唐山市", "0315", 2, (("路北区", ("建设北路",)),)),
    City("山西省", "太原市", "0351", 4, (("小店区", ("长治路", "坞城路")), ("迎泽区", ("双塔西街",))),
         ("山西医科大学", "山西大学")),
    City("内蒙古自治区", "呼和浩特市", "0471", 3, (("赛罕区", ("大学东街",)), ("新城区", ("兴安南路",))),
         ("内蒙古大学",)),
    City("内蒙古自治区", "包头市", "0472", 1, (("昆都仑区", ("钢铁大街",)),)),
    City("上海市", "上海市", "021", 24, (
        ("徐汇区", ("枫林路", "宜山路")), ("浦东新区", ("张江路", "蔡伦路", "哈雷路")), ("闵行区", ("东川路",)),
        ("黄浦区", ("瑞金二路",)), ("杨浦区", ("邯郸路",)),
    ), ("复旦大学", "上海交通大学", "同济大学", "华东师范大学")),
    City("江苏省", "南京市", "025", 10, (
        ("鼓楼区", ("中山路", "汉口路")), ("玄武区", ("珠江路",)), ("江宁区", ("龙眠大道",)),
    ), ("南京大学", "东南大学", "南京医科大学")),
    City("江苏省", "苏州市", "0512", 9, (("姑苏区", ("十梓街",)), ("吴中区", ("东吴北路",)),
                                        ("虎丘区", ("狮山路",))), ("苏州大学",)),
    City("江苏省", "无锡市", "0510", 4, (("梁溪区", ("人民中路",)), ("滨湖区", ("蠡湖大道",))), ("江南大学",)),
    City("江苏省", "泰州市", "0523", 3, (("海陵区", ("鼓楼南路",)),)),
    City("江苏省", "常州市", "0519", 2, (("新北区", ("太湖东路",)),)),
    City("浙江省", "杭州市", "0571", 12, (
        ("西湖区", ("天目山路", "文三路")), ("上城区", ("解放路",)), ("滨江区", ("江南大道",)),
        ("余杭区", ("文一西路",)),
    ), ("浙江大学", "杭州师范大学")),
    City("浙江省", "宁波市", "0574", 4, (("鄞州区", ("天童南路",)),), ("宁波大学",)),
    City("浙江省", "温州市", "0577", 3, (("鹿城区", ("学院西路",)),), ("温州医科大学",)),
    City("安徽省", "合肥市", "0551", 8, (
        ("蜀山区", ("长江西路", "黄山路")), ("包河区", ("望江东路",)), ("庐阳区", ("绩溪路",)),
    ), ("中国科学技术大学", "安徽医科大学")),
    City("安徽省", "芜湖市", "0553", 2, (("镜湖区", ("赭山西路",)),), ("皖南医学院",)),
    City("福建省", "福州市", "0591", 5, (("鼓楼区", ("五四路", "杨桥中路")), ("仓山区", ("上三路",))),
         ("福建医科大学", "福州大学")),
    City("福建省", "厦门市", "0592", 5, (("思明区", ("思明南路",)), ("湖里区", ("嘉禾路",))), ("厦门大学",)),
    City("江西省", "南昌市", "0791", 4, (("东湖区", ("八一大道",)), ("青山湖区", ("北京东路",))), ("南昌大学",)),
    City("江西省", "赣州市", "0797", 2, (("章贡区", ("青年路",)),)),
    City("山东省", "济南市", "0531", 7, (("历下区", ("经十路", "文化西路")), ("槐荫区", ("经十路",))),
         ("山东大学",)),
    City("山东省", "青岛市", "0532", 6, (("市南区", ("江苏路",)), ("崂山区", ("松岭路",))),
         ("中国海洋大学", "青岛大学")),
    City("山东省", "烟台市", "0535", 2, (("莱山区", ("观海路",)),), ("烟台大学",)),
    City("广东省", "广州市", "020", 18, (
        ("越秀区", ("中山二路", "东风东路")), ("天河区", ("天河路", "五山路")), ("黄埔区", ("开源大道", "科学大道")),
        ("海珠区", ("新港西路",)),
    ), ("中山大学", "华南理工大学", "暨南大学", "南方医科大学")),
    City("广东省", "深圳市", "0755", 14, (
        ("南山区", ("深南大道", "科技南路")), ("福田区", ("莲花路",)), ("龙岗区", ("龙翔大道",)),
    ), ("南方科技大学", "深圳大学")),
    City("广东省", "佛山市", "0757", 3, (("禅城区", ("岭南大道",)),)),
    City("广东省", "珠海市", "0756", 2, (("香洲区", ("康宁路",)),)),
    City("广东省", "汕头市", "0754", 2, (("金平区", ("长平路",)),), ("汕头大学",)),
    City("广西壮族自治区", "南宁市", "0771", 4, (("青秀区", ("民族大道",)), ("兴宁区", ("人民东路",))),
         ("广西医科大学", "广西大学")),
    City("广西壮族自治区", "桂林市", "0773", 2, (("七星区", ("漓江路",)),), ("桂林医学院",)),
    City("海南省", "海口市", "0898", 3, (("美兰区", ("海府路",)), ("龙华区", ("龙昆南路",))), ("海南大学",)),
    City("海南省", "三亚市", "0898", 1, (("吉阳区", ("迎宾路",)),)),
    City("河南省", "郑州市", "0371", 9, (
        ("金水区", ("经八路", "纬五路")), ("二七区", ("建设东路",)), ("中原区", ("建设西路",)),
        ("管城回族区", ("紫荆山南路",)),
    ), ("郑州大学", "河南农业大学")),
    City("河南省", "新乡市", "0373", 2, (("红旗区", ("金穗大道",)),), ("新乡医学院",)),
    City("河南省", "洛阳市", "0379", 2, (("涧西区", ("景华路",)),), ("河南科技大学",)),
    City("湖北省", "武汉市", "027", 16, (
        ("洪山区", ("珞喻路", "雄楚大道")), ("武昌区", ("解放路", "中南二路")), ("江汉区", ("解放大道", "航空路")),
        ("江夏区", ("文化大道",)), ("硚口区", ("解放大道",)),
    ), ("武汉大学", "华中科技大学", "华中农业大学", "湖北大学")),
    City("湖北省", "宜昌市", "0717", 2, (("西陵区", ("夷陵大道",)),), ("三峡大学",)),
    City("湖北省", "襄阳市", "0710", 2, (("襄城区", ("檀溪路",)),)),
    City("湖南省", "长沙市", "0731", 8, (
        ("开福区", ("湘雅路",)), ("岳麓区", ("麓山南路", "桐梓坡路")), ("芙蓉区", ("人民中路",)),
    ), ("中南大学", "湖南大学", "湖南师范大学")),
    City("湖南省", "株洲市", "0731", 1, (("天元区", ("长江南路",)),)),
    City("重庆市", "重庆市", "023", 9, (
        ("渝中区", ("临江路", "中山一路")), ("沙坪坝区", ("沙正街",)), ("北碚区", ("天生路",)),
        ("渝北区", ("金开大道",)),
    ), ("重庆大学", "重庆医科大学", "西南大学")),
    City("四川省", "成都市", "028", 12, (
        ("武侯区", ("国学巷", "人民南路")), ("锦江区", ("红星路",)), ("青羊区", ("青龙街",)),
        ("金牛区", ("蜀汉路",)),
    ), ("四川大学", "电子科技大学", "西南交通大学")),
    City("四川省", "绵阳市", "0816", 2, (("涪城区", ("长虹大道",)),), ("西南科技大学",)),
    City("贵州省", "贵阳市", "0851", 4, (("云岩区", ("北京路",)), ("观山湖区", ("长岭北路",))),
         ("贵州医科大学", "贵州大学")),
    City("贵州省", "遵义市", "0851", 1, (("汇川区", ("大连路",)),), ("遵义医科大学",)),
    City("云南省", "昆明市", "0871", 5, (
        ("五华区", ("西昌路", "学府路")), ("盘龙区", ("北京路",)), ("呈贡区", ("雨花路",)),
    ), ("昆明医科大学", "云南大学")),
    City("西藏自治区", "拉萨市", "0891", 1, (("城关区", ("林廓北路",)),), ("西藏大学",)),
    City("陕西省", "西安市", "029", 9, (
        ("雁塔区", ("长安南路", "西影路")), ("新城区", ("西五路",)), ("碑林区", ("友谊西路",)),
        ("长安区", ("西长安街",)),
    ), ("西安交通大学", "西北大学", "西北农林科技大学")),
    City("陕西省", "咸阳市", "029", 1, (("秦都区", ("渭阳西路",)),)),
    City("甘肃省", "兰州市", "0931", 3, (("城关区", ("东岗西路",)), ("七里河区", ("西津西路",))), ("兰州大学",)),
    City("青海省", "西宁市", "0971", 1, (("城西区", ("五四西路",)), ("城东区", ("八一路",))), ("青海大学",)),
    City("宁夏回族自治区", "银川市", "0951", 2, (("兴庆区", ("胜利街",)), ("金凤区", ("北京中路",))),
         ("宁夏医科大学",)),
    City("新疆维吾尔自治区", "乌鲁木齐市", "0991", 3, (
        ("新市区", ("北京南路",)), ("天山区", ("解放南路",)), ("沙依巴克区", ("鲤鱼山南路",)),
    ), ("新疆医科大学", "新疆大学")),
    City("辽宁省", "沈阳市", "024", 6, (
        ("和平区", ("三好街", "南京北街")), ("浑南区", ("创新路",)), ("皇姑区", ("黄河北大街",)),
    ), ("中国医科大学", "东北大学")),
    City("辽宁省", "大连市", "0411", 4, (("沙河口区", ("中山路",)), ("甘井子区", ("软件园路",))),
         ("大连医科大学", "大连理工大学")),
    City("吉林省", "长春市", "0431", 4, (("朝阳区", ("前进大街", "新民大街")), ("南关区", ("人民大街",))),
         ("吉林大学",)),
    City("黑龙江省", "哈尔滨市", "0451", 4, (("南岗区", ("学府路", "保健路")), ("香坊区", ("中山路",))),
         ("哈尔滨医科大学", "哈尔滨工业大学")),
    City("黑龙江省", "大庆市", "0459", 1, (("萨尔图区", ("中央大街",)),)),
)
"""Real cities with real districts and roads; ``weight`` is their share of the installed base."""


@dataclass(frozen=True)
class ServicePointSpec:
    """A dispatch point: where it is and how many field engineers work from it."""

    code: str
    name: str
    city: str
    address: str
    engineers: int
    is_hq: bool = False


SERVICE_POINTS: tuple[ServicePointSpec, ...] = (
    ServicePointSpec("HQ", "总部技术支持中心", "武汉市", "湖北省武汉市洪山区雄楚大道668号", 0, is_hq=True),
    ServicePointSpec("BJ", "北京快速派遣点", "北京市", "北京市海淀区北三环西路43号", 4),
    ServicePointSpec("SH", "上海快速派遣点", "上海市", "上海市浦东新区张江路368号", 4),
    ServicePointSpec("NJ", "南京快速派遣点", "南京市", "江苏省南京市江宁区龙眠大道101号", 3),
    ServicePointSpec("HF", "合肥快速派遣点", "合肥市", "安徽省合肥市蜀山区长江西路689号", 2),
    ServicePointSpec("WH", "武汉快速派遣点", "武汉市", "湖北省武汉市洪山区珞喻路726号", 5),
    ServicePointSpec("ZZ", "郑州快速派遣点", "郑州市", "河南省郑州市金水区纬五路21号", 3),
    ServicePointSpec("CS", "长沙快速派遣点", "长沙市", "湖南省长沙市岳麓区桐梓坡路182号", 2),
    ServicePointSpec("GZ", "广州快速派遣点", "广州市", "广东省广州市天河区五山路371号", 4),
    ServicePointSpec("CD", "成都快速派遣点", "成都市", "四川省成都市武侯区人民南路四段9号", 3),
    ServicePointSpec("KM", "昆明快速派遣点", "昆明市", "云南省昆明市五华区学府路296号", 2),
    ServicePointSpec("XA", "西安快速派遣点", "西安市", "陕西省西安市雁塔区长安南路88号", 3),
    ServicePointSpec("WL", "乌鲁木齐快速派遣点", "乌鲁木齐市", "新疆维吾尔自治区乌鲁木齐市新市区北京南路358号", 2),
    ServicePointSpec("SY", "沈阳快速派遣点", "沈阳市", "辽宁省沈阳市浑南区创新路155号", 3),
)
"""HQ in Wuhan and the regional dispatch points; engineers add up to the demo's field force."""

SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("王", "wang", 10), ("李", "li", 10), ("张", "zhang", 9), ("刘", "liu", 8), ("陈", "chen", 7),
    ("杨", "yang", 5), ("黄", "huang", 4), ("赵", "zhao", 4), ("吴", "wu", 4), ("周", "zhou", 4),
    ("徐", "xu", 3), ("孙", "sun", 3), ("马", "ma", 3), ("朱", "zhu", 3), ("胡", "hu", 3), ("郭", "guo", 3),
    ("何", "he", 2), ("高", "gao", 2), ("林", "lin", 2), ("罗", "luo", 2), ("郑", "zheng", 2), ("梁", "liang", 2),
    ("谢", "xie", 2), ("宋", "song", 2), ("唐", "tang", 2), ("许", "xu", 2), ("韩", "han", 2), ("冯", "feng", 2),
    ("邓", "deng", 2), ("曹", "cao", 2), ("彭", "peng", 1), ("曾", "zeng", 1), ("肖", "xiao", 1), ("田", "tian", 1),
    ("董", "dong", 1), ("潘", "pan", 1), ("袁", "yuan", 1), ("蔡", "cai", 1), ("蒋", "jiang", 1), ("余", "yu", 1),
    ("于", "yu", 1), ("杜", "du", 1), ("叶", "ye", 1), ("程", "cheng", 1), ("魏", "wei", 1), ("苏", "su", 1),
)
"""Common surnames with pinyin (for e-mail addresses) and a rough frequency weight."""

GIVEN_CHARS = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀",
    "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "建", "文", "辉", "力", "鹏", "宇", "浩", "凯", "婷",
    "雪", "琳", "晨", "欣", "佳", "思", "雨", "子", "梓", "博", "志", "海", "波", "俊", "峰", "晓", "燕", "倩",
    "蕾", "帆", "颖", "楠", "昊", "然", "瑞", "航", "悦", "怡", "嘉", "振", "国", "春", "庆", "新", "亮", "琴",
)
"""Characters for given names (one or two of them)."""

ORG_WORDS = (
    "仁和", "康宁", "博爱", "安和", "瑞和", "和美", "嘉华", "佳禾", "华信", "同心", "恒康", "美华", "惠民", "天衡",
    "康源", "华晟", "瑞科", "诺康", "启明", "鼎泰", "卓越", "安诺", "普瑞", "泽康", "和泰", "君合", "澜海",
    "睿森", "凯瑞", "博源", "弘润", "汇德", "思邈", "济世", "泰和", "怡康", "东方", "长青", "明德", "聚源",
)
"""Invented two-character words for organisation names (no real organisation intended)."""

IVF_PATTERNS = ("{city}{word}生殖医学中心", "{city}{word}妇产医院生殖医学中心", "{city}{word}妇儿医院辅助生殖中心",
                "{city}{word}生殖与遗传专科医院")
HOSPITAL_PATTERNS = ("{city}{word}医院中心实验室", "{city}{word}医院检验科", "{city}{word}医院病理科",
                     "{city}{word}人民医院临床研究中心", "{city}{word}肿瘤医院细胞治疗中心")
GMP_PATTERNS = ("{city}{word}生物制药有限公司", "{word}细胞治疗科技有限公司", "{city}{word}生物科技股份有限公司",
                "{word}疫苗有限公司", "{city}{word}药业有限公司")
RESEARCH_LABS = ("生命科学学院细胞生物学实验室", "医学院干细胞研究中心", "基础医学院病原生物学实验室",
                 "药学院细胞药理实验室", "公共卫生学院病毒学实验室", "转化医学研究院细胞培养平台",
                 "肿瘤研究所细胞平台", "再生医学研究中心")
RESEARCH_FALLBACK = "{city}{word}生物医药研究院"
CDC_PATTERN = "{city}疾病预防控制中心"
CDC_LABS = ("病毒检测实验室", "微生物检验科", "病原体检测所")
DISTRIBUTOR_PATTERNS = ("{city}{word}医疗器械有限公司", "{city}{word}科学仪器有限公司",
                        "{city}{word}实验设备贸易有限公司")

SITE_NAMES: dict[str, tuple[str, ...]] = {
    "ivf_centre": ("胚胎培养实验室", "分院生殖中心", "冷冻胚胎库"),
    "hospital": ("门诊医技楼", "住院部中心实验室", "分院检验科"),
    "gmp_pharma": ("细胞车间(B级洁净区)", "QC 微生物实验室", "研发中心细胞实验室"),
    "research_lab": ("主校区实验楼", "医学部实验平台", "新校区科研楼"),
    "cdc": ("实验楼", "应急检测实验室", "分中心实验室"),
    "distributor": ("展厅及备机库", "维修仓库", "办事处"),
}
"""Site names per customer kind; the first one is the main site."""

CONTACT_TITLES: dict[str, tuple[str, ...]] = {
    "ivf_centre": ("胚胎实验室主任", "胚胎培养师", "设备管理员"),
    "hospital": ("设备科工程师", "检验科主任", "实验室技术员"),
    "gmp_pharma": ("QA 经理", "设备工程师", "生产车间主管"),
    "research_lab": ("实验室主任", "课题组博士后", "平台技术员"),
    "cdc": ("实验室负责人", "检验技师", "设备管理员"),
    "distributor": ("售后经理", "技术服务工程师", "商务经理"),
}


@dataclass(frozen=True)
class ModelSpec:
    """An incubator model of the demo catalogue and the serial prefix and firmware line it ships with."""

    brand: str
    model: str
    co2_sensor: str
    tri_gas: bool
    chamber_volume_l: int
    serial_prefix: str
    firmware: tuple[str, ...]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("Heal Force 力康", "HF90", "ir", False, 90, "HF90", ("2.0.4", "2.1.3", "2.3.0", "2.4.1", "2.5.2")),
    ModelSpec("Heal Force 力康", "HF240", "ir", False, 240, "HF240", ("2.0.4", "2.1.3", "2.3.0", "2.4.1", "2.5.2")),
    ModelSpec("Heal Force 力康", "HF100 三气", "ir", True, 100, "HF100T", ("3.0.2", "3.1.0", "3.2.1", "3.3.0")),
    ModelSpec("Biobase 博科", "BJPX-C160", "ir", False, 160, "BJC160", ("V1.6", "V1.8", "V2.0", "V2.1")),
    ModelSpec("Yiheng 一恒", "BPN-80CW", "tc", False, 80, "BPN80", ("1.2.0", "1.3.5", "1.4.2")),
    ModelSpec("Boxun 博迅", "BC-J160", "tc", False, 160, "BCJ160", ("V3.1", "V3.2", "V3.5")),
    ModelSpec("Meiling 中科美菱", "DH-160I", "ir", False, 160, "DH160", ("1.0.8", "1.1.2", "1.2.0", "1.3.1")),
)

MODEL_MIX: dict[str, tuple[int, ...]] = {
    "ivf_centre": (10, 4, 40, 3, 2, 2, 3),
    "hospital": (20, 6, 2, 12, 10, 8, 8),
    "gmp_pharma": (12, 16, 3, 12, 4, 6, 10),
    "research_lab": (18, 6, 4, 10, 12, 10, 8),
    "cdc": (14, 4, 1, 10, 8, 10, 6),
    "distributor": (10, 6, 4, 10, 10, 10, 10),
}
"""Relative weight of each model in MODELS per customer kind (IVF labs favour tri-gas incubators)."""


@dataclass(frozen=True)
class Part:
    """A spare part that the demo's work reports consume."""

    number: str
    name: str

    @property
    def short(self) -> str:
        """The Chinese name alone, as it reads in a sentence."""
        return self.name.split(" (")[0]


PARTS: dict[str, Part] = {
    "co2_ir": Part("PN-CO2-IR-01", "IR CO2 传感器 (IR CO2 sensor)"),
    "co2_tc": Part("PN-CO2-TC-01", "TC CO2 传感器 (TC CO2 sensor)"),
    "gasket": Part("PN-GSK-160", "内门密封条 (door gasket)"),
    "mainboard": Part("PN-MB-V3", "主控板 (mainboard)"),
    "hepa": Part("PN-HEPA-01", "HEPA 过滤器 (HEPA filter)"),
    "touch": Part("PN-TP-07", "7 寸触摸屏 (touch panel)"),
    "pt100": Part("PN-PT100-02", "PT100 温度探头 (temperature probe)"),
    "o2": Part("PN-O2-ZR-01", "O2 传感器 (O2 sensor)"),
    "valve": Part("PN-SOL-V12", "进气电磁阀 (gas solenoid valve)"),
    "switcher": Part("PN-GAS-SW2", "气瓶自动切换器 (cylinder changeover unit)"),
    "heater": Part("PN-HTR-160", "加热膜 (heater film)"),
    "fan": Part("PN-FAN-24V", "循环风机 (circulation fan)"),
}

REFERENCE_INSTRUMENTS = (
    "Vaisala GM70 CO2 检测仪 (证书 JZ2026-0412)",
    "Testo 315-3 CO2 检测仪 (证书 JZ2026-0877)",
    "Geotech G100 CO2 分析仪 (证书 JZ2025-1931)",
)
TEMPERATURE_INSTRUMENTS = (
    "Fluke 1524 参考温度计 (证书 WD2026-0211)",
    "Testo 735-2 精密温度计 (证书 WD2025-1408)",
)


@dataclass(frozen=True)
class Fault:
    """A kind of fault report: how customers describe it and how it usually gets fixed.

    ``onsite`` is the chance an engineer must go; ``parts`` are keys of PARTS fitted on site;
    ``calibrate`` says whether the work report records a CO2 / temperature calibration.
    """

    key: str
    texts: tuple[str, ...]
    weight: int
    onsite: float
    priority: str
    skill: str
    parts: tuple[str, ...] = ()
    calibrate: tuple[str, ...] = ()
    tri_gas_only: bool = False
    remote_fix: str = "已远程指导客户处理,设备恢复正常"
    onsite_fix: str = "现场处理完毕,运行 2 小时观察正常"
    finding: str = "现场检测确认故障现象,开始处理"


FAULTS: tuple[Fault, ...] = (
    Fault("co2_alarm", (
        "CO2 浓度报警,显示 {co2_low}%,设定 5.0%",
        "CO2 浓度报警,开门后恢复很慢,一直在 {co2_low}% 左右",
        "CO2 level alarm: reading {co2_low}% vs setpoint 5.0%",
    ), 14, 0.45, "high", "co2", ("co2_ir", "valve"), ("co2",),
        remote_fix="远程指导更换气瓶并检查减压阀出口压力 0.1MPa,CO2 浓度恢复 5.0%",
        onsite_fix="更换进气电磁阀/传感器并校准 CO2,浓度稳定在 5.0%",
        finding="现场检测:进气电磁阀动作迟缓,CO2 恢复时间 > 20 分钟"),
    Fault("co2_drift", (
        "CO2 传感器漂移,与外部检测仪相差 {drift}%",
        "培养箱显示 CO2 5.0%,手持检测仪只有 {co2_low}%,怀疑传感器漂移",
        "CO2 sensor drift suspected: external analyser reads {co2_low}%",
    ), 10, 0.8, "normal", "calibration", ("co2_ir",), ("co2",),
        onsite_fix="CO2 传感器零点/跨度校准,as-left 偏差 < 0.1%",
        finding="现场用参考检测仪比对,CO2 偏差超出 ±0.3%"),
    Fault("temp_high", (
        "温度偏高,箱内显示 {temp_high}℃,设定 37.0℃",
        "箱内温度波动大,{temp_low}~{temp_high}℃ 之间",
        "Chamber temperature too high: {temp_high} °C at setpoint 37.0 °C",
    ), 10, 0.7, "high", "electronics", ("pt100", "heater", "mainboard"), ("temperature",),
        onsite_fix="更换温度探头并校准温度,37.0℃ 稳定 ±0.1℃",
        finding="现场检测:PT100 探头阻值偏移,温控超调"),
    Fault("door_seal", (
        "门封条老化开裂,外门关不严,CO2 恢复慢",
        "内门玻璃门密封条脱落",
        "Door gasket worn, door does not seal",
    ), 8, 0.95, "normal", "mechanical", ("gasket",), (),
        onsite_fix="更换内门密封条,气密性测试合格",
        finding="现场检测:内门密封条多处开裂"),
    Fault("touch", (
        "触摸屏无响应,无法修改设定值",
        "显示屏花屏/黑屏,但设备仍在运行",
        "Touch screen not responding",
    ), 6, 0.85, "normal", "electronics", ("touch",), (),
        remote_fix="指导客户断电重启后触摸屏恢复", onsite_fix="更换触摸屏,功能测试正常",
        finding="现场检测:触摸屏排线氧化,触控失灵"),
    Fault("mainboard", (
        "主板死机,面板所有按键无反应,需断电才能恢复",
        "设备频繁重启,报 E01 通讯错误",
        "Controller freezes, unit reboots several times a day",
    ), 6, 0.8, "high", "electronics", ("mainboard",), ("co2", "temperature"),
        remote_fix="远程恢复出厂参数后运行稳定", onsite_fix="更换主控板,重新设置参数并校准",
        finding="On site: controller watchdog resets, mainboard to be replaced"),
    Fault("humidity", (
        "加湿盘缺水报警,湿度低于 85%RH",
        "湿度低,培养液蒸发严重",
        "Low humidity alarm, water pan empty",
    ), 8, 0.1, "low", "calibration", (), (),
        remote_fix="指导客户加入无菌蒸馏水至加湿盘刻度线,湿度恢复 95%RH"),
    Fault("cylinder", (
        "气瓶切换失败,A 瓶用完后未自动切换到 B 瓶",
        "双气瓶自动切换器报警,CO2 供气中断",
        "CO2 cylinder changeover failed",
    ), 6, 0.55, "high", "co2", ("switcher", "valve"), ("co2",),
        remote_fix="指导客户手动切换气瓶并复位切换器", onsite_fix="更换气瓶自动切换器,供气测试正常",
        finding="现场检测:切换器压力开关失效"),
    Fault("firmware", (
        "固件升级后报错 E{err},无法进入运行界面",
        "固件升级到新版本后 CO2 显示异常",
        "Error E{err} after firmware update",
    ), 5, 0.3, "normal", "firmware", ("mainboard",), (),
        remote_fix="远程回退至上一版本固件并恢复参数,运行正常", onsite_fix="现场重新刷写固件并恢复参数",
        finding="现场检测:固件参数区损坏"),
    Fault("o2", (
        "三气培养箱 O2 浓度降不到 5%,一直在 {o2}%",
        "N2 消耗异常快,O2 控制不稳定",
        "Tri-gas unit cannot reach 5 % O2 (reads {o2} %)",
    ), 6, 0.75, "high", "tri_gas", ("o2", "valve"), ("co2",), tri_gas_only=True,
        remote_fix="指导客户检查 N2 气源压力并重新设置,O2 恢复 5%", onsite_fix="更换 O2 传感器并校准",
        finding="现场检测:O2 传感器响应慢,N2 阀正常"),
    Fault("hepa", (
        "HEPA 过滤器到期更换提醒",
        "需要更换 HEPA 过滤器并做一次消毒",
    ), 4, 1.0, "low", "calibration", ("hepa",), (),
        onsite_fix="更换 HEPA 过滤器,完成 140℃ 高温灭菌",
        finding="现场确认 HEPA 过滤器已到使用寿命"),
    Fault("sterilise", (
        "高温灭菌程序中途中断,报加热故障",
        "140℃ 灭菌程序无法启动",
    ), 4, 0.85, "normal", "electronics", ("heater", "fan"), ("temperature",),
        onsite_fix="更换加热膜/循环风机,灭菌程序完整运行一次",
        finding="现场检测:循环风机轴承异响,加热膜局部断路"),
)
"""The fault mix of the demo's ticket history."""

IOT_TEXTS: dict[str, str] = {
    "co2_alarm": "IoT 报警: CO2 浓度 {co2_low}% 持续 15 分钟低于下限 4.5%",
    "temp_high": "IoT 报警: 箱内温度 {temp_high}℃ 超出上限 37.5℃",
    "humidity": "IoT 报警: 湿度 {rh}%RH 低于下限 85%RH",
    "cylinder": "IoT 报警: CO2 进气压力为 0,疑似气瓶耗尽",
    "o2": "IoT 报警: O2 浓度 {o2}% 持续高于设定 5.0%",
    "mainboard": "IoT 报警: 设备离线超过 30 分钟",
}
"""Alarm texts for faults the remote monitoring system detects itself."""

REMOTE_NOTES = (
    "已电话联系客户,指导检查气瓶压力、管路接头及门封,请客户拍照反馈",
    "已通过微信视频查看面板报警记录,正在排查",
    "远程调取运行日志,近 24 小时数据已导出分析",
    "Asked the customer to send photos of the display and the cylinder gauge",
)
FIRST_CONTACT_NOTES = (
    "已电话联系客户,确认故障现象与报警代码,告知处理流程与时限",
    "已回电客户,了解设备状态及培养物情况,已安排远程排查",
    "已微信联系实验室负责人,收到面板照片,正在分析",
    "Called the lab back: symptoms and alarm codes confirmed, next steps and timelines explained",
)
ESCALATION_REASONS = (
    "远程及现场均无法定位,疑似批次性问题,升级总部技术专家",
    "需总部评估整机调换/备机方案",
    "固件缺陷疑似,需总部研发确认",
)
WAIT_PART_REASONS = (
    "区域库无现货,等待总部调拨 {part}",
    "需要更换 {part},已下单,等待到货",
)
WAIT_CUSTOMER_REASONS = (
    "培养周期未结束,客户要求胚胎转移后再停机检修",
    "等待客户确认停机时间",
    "客户实验进行中,约定下周上门",
)
CANCEL_REASONS = ("客户自行恢复,撤销报修", "误报:客户开门时间过长导致 CO2 报警", "重复报修,已合并到已有工单")
REOPEN_REASONS = ("问题复现,CO2 恢复仍然很慢", "温度再次偏高,请再次上门")
CUSTOMER_CLOSE_NOTES = ("设备运行正常,确认闭环", "已观察 48 小时,参数稳定,同意闭环", "Incubator stable, please close")
AGENT_CLOSE_NOTES = ("电话回访客户确认设备正常,闭环", "客户 72 小时未回复,按规则回访后闭环")
PREVENTIVE_SUMMARY = "年度维保巡检:清洁消毒、检查门封及风机、校准 CO2 与温度,运行正常"
