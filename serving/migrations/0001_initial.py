"""ExpertCall moves here from experts: state only, the table experts_expertcall and its rows stay."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('experts', '0008_expertcall_to_serving'),
        ('routing', '0007_category_to_experts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.SeparateDatabaseAndState(database_operations=[], state_operations=[
        migrations.CreateModel(
            name='ExpertCall',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('source', models.CharField(choices=[('api', 'API'), ('page', 'Page'), ('batch', 'Batch')], default='api', max_length=10)),
                ('requested_model', models.CharField(help_text="'coe' or an expert's name.", max_length=100)),
                ('status', models.CharField(choices=[('ok', 'Answered by the chosen expert'), ('fallback', 'Answered by the fallback expert'), ('error', 'Not answered'), ('aborted', 'Client went away mid-answer')], db_index=True, max_length=10)),
                ('fallback_reason', models.CharField(blank=True, max_length=40)),
                ('error', models.TextField(blank=True)),
                ('attempts', models.JSONField(blank=True, default=list)),
                ('stream', models.BooleanField(default=False)),
                ('simulated', models.BooleanField(default=False)),
                ('ttft_ms', models.FloatField(blank=True, null=True)),
                ('total_ms', models.FloatField(blank=True, null=True)),
                ('prompt_tokens', models.PositiveIntegerField(default=0)),
                ('completion_tokens', models.PositiveIntegerField(default=0)),
                ('response', models.TextField(blank=True)),
                ('decision', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='calls', to='routing.routingdecision')),
                ('expert', models.ForeignKey(blank=True, help_text='The expert that answered.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='calls', to='experts.expert')),
                ('primary', models.ForeignKey(help_text='The expert the router and map (or the caller) chose.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='experts.expert')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'experts_expertcall',
                'ordering': ['-id'],
            },
        ),
    ])]
